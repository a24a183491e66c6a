"""Bearer tokens: 401 without a valid one on every endpoint but /health and /docs; a token sees only
its own searches, on every endpoint (someone else's search is a 404, like a missing one)."""

from __future__ import annotations

import pytest

from nas.service import revoke_token

from .api_support import SPEC, Service, seed_study

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

SID = "0123456789abcdef0123456789abcdef"
PROTECTED = [
    ("POST", "/searches"), ("GET", "/searches"), ("GET", f"/searches/{SID}"), ("GET", f"/searches/{SID}/trials"),
    ("GET", f"/searches/{SID}/best"), ("GET", f"/searches/{SID}/pareto"), ("POST", f"/searches/{SID}/cancel"),
    ("GET", "/spaces"), ("GET", "/devices"),
]
BAD_HEADERS = {
    "none": {},
    "unknown token": {"Authorization": "Bearer nas_not-a-real-token"},
    "not ours": {"Authorization": "Bearer abc"},
    "no credentials": {"Authorization": "Bearer"},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("kind", list(BAD_HEADERS))
def test_401_without_a_valid_token(service: Service, method: str, path: str, kind: str) -> None:
    with service.client() as c:
        response = c.request(method, path, headers=BAD_HEADERS[kind], json=SPEC if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json"])
def test_open_endpoints(service: Service, path: str) -> None:
    with service.client() as c:
        assert c.get(path).status_code == 200


def test_each_token_sees_only_its_own_searches(service: Service) -> None:
    alice, bob = service.client(service.token()), service.client(service.token())
    with alice, bob:
        mine = service.submit(alice)
        seed_study(service.database_url, mine["study_name"], [(0.6, 9.0), (0.7, 11.0)])
        theirs = service.submit(bob)
        sid = mine["id"]
        for path in (f"/searches/{sid}", f"/searches/{sid}/trials", f"/searches/{sid}/best",
                     f"/searches/{sid}/pareto"):
            assert alice.get(path).status_code == 200, path
            hidden = bob.get(path)
            assert hidden.status_code == 404 and hidden.json()["detail"] == f"unknown search {sid!r}", path
        assert bob.post(f"/searches/{sid}/cancel").status_code == 404
        assert alice.get(f"/searches/{sid}").json()["status"] == "queued"  # bob's cancel did nothing
        assert [s["id"] for s in alice.get("/searches").json()["data"]] == [sid]
        assert [s["id"] for s in bob.get("/searches").json()["data"]] == [theirs["id"]]
        assert bob.get("/searches", params={"status": "queued"}).json()["count"] == 1
        assert alice.post(f"/searches/{sid}/cancel").status_code == 200


def test_revoked_token_is_refused(service: Service) -> None:
    from uuid import uuid4

    name = f"leaving-{uuid4().hex[:8]}"
    token = service.token(name)
    with service.client(token) as c:
        assert c.get("/searches").status_code == 200
        revoke_token(service.database_url, name)
        assert c.get("/searches").status_code == 401
