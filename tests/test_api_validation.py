"""Invalid requests: 422 naming the field (the spec's and the query's), 404 for unknown ids, 413 for
oversized bodies. Nothing invalid is stored or queued."""

from __future__ import annotations

from typing import Any

import pytest

from .api_support import SPEC, Service, queued_messages

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

INLINE_SPACE_MISSING_STEM = {"name": "inline", "stages": [], "head": {"channels": 64, "activation": ["relu"]}}

CASES: list[tuple[str, Any, list[Any]]] = [
    ("unknown space", {**SPEC, "space": "no-such-space"}, ["body", "space"]),
    ("inline space", {**SPEC, "space": INLINE_SPACE_MISSING_STEM}, ["body", "space", "stem"]),
    ("unknown device", {**SPEC, "device": "tpu-v9"}, ["body", "device"]),
    ("negative target", {**SPEC, "latency": {"target_ms": -1.0}}, ["body", "latency", "target_ms"]),
    ("zero target", {**SPEC, "latency": {"target_ms": 0}}, ["body", "latency", "target_ms"]),
    ("no target", {**SPEC, "latency": {"mode": "measured"}}, ["body", "latency", "target_ms"]),
    ("unknown reference", {**SPEC, "latency": {"target_reference": "resnet-9000"}},
     ["body", "latency", "target_reference"]),
    ("missing latency", {k: v for k, v in SPEC.items() if k != "latency"}, ["body", "latency"]),
    ("unknown strategy", {**SPEC, "strategy": {"name": "grid"}}, ["body", "strategy", "name"]),
    ("zero budget", {**SPEC, "budget": {"trials": 0}}, ["body", "budget", "trials"]),
    ("no budget", {**SPEC, "budget": {"trials": None}}, ["body", "budget", "trials"]),
    ("extra field", {**SPEC, "colour": "red"}, ["body", "colour"]),
    ("bad name", {**SPEC, "name": "has spaces"}, ["body", "name"]),
    ("not a mapping", [SPEC], ["body"]),
    # what a worker would refuse minutes later is refused here (issue 14: these were accepted with 202)
    ("netadapt seed as a server path", {**SPEC, "strategy": {"name": "netadapt", "options": {"seed": "/etc/passwd"}}},
     ["body", "strategy", "options", "seed"]),
    ("netadapt seed as a server JSON file",
     {**SPEC, "strategy": {"name": "netadapt", "options": {"seed": "/etc/hostname.json"}}},
     ["body", "strategy", "options", "seed"]),
    ("netadapt seed outside the space",
     {**SPEC, "strategy": {"name": "netadapt", "options": {"seed": "mobilenetv3-large-1.0"}}},
     ["body", "strategy", "options", "seed"]),
    ("netadapt without fine-tuning epochs",
     {**SPEC, "strategy": {"name": "netadapt", "options": {"seed": "mobilenetv3-small-1.0", "final_epochs": 0}}},
     ["body", "strategy", "options", "final_epochs"]),
    ("target reference as a server path", {**SPEC, "latency": {"target_reference": "/etc/passwd"}},
     ["body", "latency", "target_reference"]),
    ("imagefolder at a server path", {**SPEC, "proxy": {"dataset": {"kind": "imagefolder", "path": "/etc"}}},
     ["body", "proxy", "dataset", "path"]),
    ("cifar10 at a server path", {**SPEC, "proxy": {"dataset": {"kind": "cifar10", "path": "/etc"}}},
     ["body", "proxy", "dataset", "path"]),
    ("custom reward without weights", {**SPEC, "reward": {"kind": "custom"}}, ["body", "reward", "alpha"]),
    ("custom reward without beta", {**SPEC, "reward": {"kind": "custom", "alpha": -0.1}}, ["body", "reward", "beta"]),
    ("tournament above the population",
     {**SPEC, "strategy": {"name": "evolution", "options": {"population_size": 5, "tournament_size": 10}}},
     ["body", "strategy", "options", "tournament_size"]),
    ("tournament above the budget's default population",
     {**SPEC, "strategy": {"name": "evolution", "options": {"tournament_size": 10}}},
     ["body", "strategy", "options", "tournament_size"]),
    ("more digits than there are", {**SPEC, "proxy": {"dataset": {"kind": "digits", "subset": 5000}}},
     ["body", "proxy", "dataset", "subset"]),
    ("evolution for a Pareto search", {**SPEC, "reward": {"kind": "pareto"}, "strategy": {"name": "evolution"}},
     ["body", "strategy", "name"]),
]


@pytest.mark.parametrize(("case", "document", "loc"), CASES, ids=[c[0] for c in CASES])
def test_invalid_spec_is_422_naming_the_field(service: Service, redis_client: Any, case: str, document: Any,
                                              loc: list[Any]) -> None:
    with service.client(service.token()) as c:
        before = len(queued_messages(redis_client))
        response = c.post("/searches", json=document)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail[0]["loc"] == loc and detail[0]["msg"]
        assert c.get("/searches").json()["count"] == 0  # nothing stored
        assert len(queued_messages(redis_client)) == before  # nothing queued


@pytest.mark.parametrize(("raw", "loc"), [
    (b'{"latency": {"target_ms": NaN}}', ["body", "latency", "target_ms"]),
    (b'{"latency": {"target_ms": Infinity}}', ["body", "latency", "target_ms"]),
    (b'{"latency": {"target_ms": 5}, "reward": {"kind": "soft", "alpha": NaN}}', ["body", "reward", "alpha"]),
])
def test_non_finite_numbers_are_422(service: Service, raw: bytes, loc: list[Any]) -> None:
    with service.client(service.token()) as c:
        response = c.post("/searches", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == loc
    assert "finite" in response.json()["detail"][0]["msg"]


def test_messages_name_the_known_values(service: Service) -> None:
    with service.client(service.token()) as c:
        space = c.post("/searches", json={**SPEC, "space": "nope"}).json()["detail"][0]["msg"]
        device = c.post("/searches", json={**SPEC, "device": "nope"}).json()["detail"][0]["msg"]
    assert "mobilenetv3-small" in space and "cpu-ort-1t" in device


def test_malformed_json_and_missing_body(service: Service) -> None:
    with service.client(service.token()) as c:
        broken = c.post("/searches", content=b'{"latency": ', headers={"content-type": "application/json"})
        empty = c.post("/searches")
    assert broken.status_code == 422 and broken.json()["detail"][0]["loc"][0] == "body"
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/searches", {"limit": 0}, "limit"), ("/searches", {"limit": 501}, "limit"),
    ("/searches", {"offset": -1}, "offset"), ("/searches", {"status": "paused"}, "status"),
    ("/searches/{id}/trials", {"limit": 0}, "limit"), ("/searches/{id}/trials", {"offset": "x"}, "offset"),
])
def test_bad_query_parameters(service: Service, path: str, params: dict[str, Any], field: str) -> None:
    with service.client(service.token()) as c:
        sid = service.submit(c)["id"] if "{id}" in path else ""
        response = c.get(path.format(id=sid), params=params)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/searches/{id}"), ("GET", "/searches/{id}/trials"), ("GET", "/searches/{id}/best"),
    ("GET", "/searches/{id}/pareto"), ("POST", "/searches/{id}/cancel"),
])
def test_unknown_id_is_404(service: Service, method: str, path: str) -> None:
    with service.client(service.token()) as c:
        response = c.request(method, path.format(id="0123456789abcdef0123456789abcdef"))
    assert response.status_code == 404 and "unknown search" in response.json()["detail"]


def test_oversized_body_is_413(service: Service) -> None:
    big = {**SPEC, "strategy": {"name": "tpe", "options": {"padding": "x" * 1_100_000}}}
    with service.client(service.token()) as c:
        response = c.post("/searches", json=big)
        chunked = c.post("/searches", content=iter([b"[" + b" " * 600_000, b" " * 600_000 + b"]"]),
                         headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert chunked.status_code == 413
