"""The searches endpoints on a live uvicorn server, over SQLite and PostgreSQL, with the real Redis queue."""

from __future__ import annotations

from typing import Any

import pytest

from nas.service import SearchStatus, mark_finished, mark_running, update_progress

from .api_support import SPEC, Service, queued_messages, seed_study

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service


def test_submit_queues_a_message(service: Service, redis_client: Any) -> None:
    with service.client(service.token()) as c:
        response = c.post("/searches", json=SPEC)
    assert response.status_code == 202, response.text
    body = response.json()
    service.submitted.add(body["id"])
    assert response.headers["location"] == f"/searches/{body['id']}"
    assert body["status"] == "queued" and body["study_name"] == f"search-{body['id']}"
    assert body["progress"] == {"finished": 0, "budget_trials": 4, "running": 0, "elapsed_seconds": 0.0,
                                "fraction": 0.0, "message": "queued"}
    assert body["spec"]["latency"]["target_ms"] == 10.0 and body["spec"]["strategy"]["name"] == "tpe"  # defaults
    mine = [m for m in queued_messages(redis_client) if m["headers"]["id"] == f"search-{body['id']}"]
    assert len(mine) == 1
    assert mine[0]["headers"]["task"] == "nas.search.run"
    assert mine[0]["properties"]["delivery_info"]["routing_key"] == "search"


def test_get_reflects_worker_progress(service: Service) -> None:
    with service.client(service.token()) as c:
        search = service.submit(c)
        sid, url = search["id"], service.database_url
        assert c.get(f"/searches/{sid}").json()["status"] == "queued"
        mark_running(url, sid, "worker-1")
        update_progress(url, sid, finished=2, budget_trials=4, running=2, elapsed_seconds=30.0, best_value=0.71,
                        best_trial=1, message="evaluating 2 candidate(s)")
        got = c.get(f"/searches/{sid}").json()
        assert got["status"] == "running" and got["worker"] == "worker-1" and got["attempts"] == 1
        assert got["progress"]["fraction"] == 0.5 and got["progress"]["running"] == 2
        # within_target is known once the search has ended (its final check); None while it runs
        assert got["best"] == {"trial": 1, "value": 0.71, "within_target": None} and got["started_at"] is not None
        mark_finished(url, sid, SearchStatus.failed, error="no latency worker answered")
        got = c.get(f"/searches/{sid}").json()
        assert got["status"] == "failed" and got["error"] == "no latency worker answered"
        assert got["finished_at"] is not None


def test_list_pagination_and_status_filter(service: Service) -> None:
    with service.client(service.token()) as c:
        ids = [service.submit(c, name=f"page-{i}")["id"] for i in range(5)]
        pages = [c.get("/searches", params={"offset": off, "limit": 2}).json() for off in (0, 2, 4)]
        assert [p["count"] for p in pages] == [5, 5, 5] and [len(p["data"]) for p in pages] == [2, 2, 1]
        listed = [s["id"] for p in pages for s in p["data"]]
        assert listed == ids[::-1]  # newest first
        assert c.get("/searches", params={"offset": 10}).json() == {"data": [], "count": 5}
        mark_running(service.database_url, ids[1], "w")
        running = c.get("/searches", params={"status": "running"}).json()
        assert running["count"] == 1 and running["data"][0]["id"] == ids[1]
        assert c.get("/searches", params={"status": "queued"}).json()["count"] == 4


def test_trials_best_and_pareto_from_the_study(service: Service) -> None:
    with service.client(service.token()) as c:
        search = service.submit(c)
        sid = search["id"]
        assert c.get(f"/searches/{sid}/trials").json() == {"data": [], "count": 0}  # no study yet
        assert c.get(f"/searches/{sid}/pareto").json() == {"data": [], "count": 0}
        missing = c.get(f"/searches/{sid}/best")
        assert missing.status_code == 404 and "no completed trial" in missing.json()["detail"]

        points = [(0.50, 8.0), (0.70, 12.0), (0.60, 9.0), (0.55, 15.0), (0.72, 30.0)]
        seed_study(service.database_url, search["study_name"], points, failed=1)
        page = c.get(f"/searches/{sid}/trials", params={"offset": 1, "limit": 3}).json()
        assert page["count"] == 6 and [t["trial"] for t in page["data"]] == [1, 2, 3]
        assert page["data"][0]["accuracy"] == 0.70 and page["data"][0]["latency_ms"] == 12.0
        assert page["data"][0]["state"] == "COMPLETE" and page["data"][0]["arch_string"] == "arch-1"
        last = c.get(f"/searches/{sid}/trials", params={"offset": 5}).json()["data"]
        assert last[0]["state"] == "FAIL" and last[0]["error"] == "training diverged"

        best = c.get(f"/searches/{sid}/best")
        rewards = [a * (lat / 10.0) ** -0.07 for a, lat in points]
        winner = max((i for i in range(len(points)) if points[i][1] <= 10.0), key=lambda i: rewards[i])
        assert max(range(len(points)), key=lambda i: rewards[i]) != winner  # the reward's favourite is over T
        assert best.status_code == 200 and best.headers["x-nas-trial"] == str(winner)
        assert best.headers["x-nas-within-target"] == "true" and best.headers["x-nas-target-ms"] == "10.0000"
        assert best.json()["name"] == f"candidate-{winner}"

        front = c.get(f"/searches/{sid}/pareto").json()
        assert [t["trial"] for t in front["data"]] == [0, 2, 1, 4] and front["count"] == 4  # fastest first
        assert front["data"][0]["architecture"]["name"] == "candidate-0"


def test_best_of_a_pareto_search_is_the_most_accurate_within_target(service: Service) -> None:
    with service.client(service.token()) as c:
        search = service.submit(c, reward={"kind": "pareto"}, strategy={"name": "nsga2"})
        seed_study(service.database_url, search["study_name"], [(0.5, 5.0), (0.65, 9.5), (0.9, 40.0)],
                   pareto=True, target_ms=10.0)
        best = c.get(f"/searches/{search['id']}/best")
        assert best.headers["x-nas-trial"] == "1"
        front = c.get(f"/searches/{search['id']}/pareto").json()
        assert [t["trial"] for t in front["data"]] == [0, 1, 2]
        assert all(t["values"] is not None and len(t["values"]) == 2 for t in front["data"])


@pytest.mark.parametrize("final", ["succeeded", "failed"])
def test_cancel(service: Service, final: str) -> None:
    with service.client(service.token()) as c:
        queued = service.submit(c)
        response = c.post(f"/searches/{queued['id']}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        again = c.post(f"/searches/{queued['id']}/cancel")
        assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

        running = service.submit(c)
        mark_running(service.database_url, running["id"], "w")
        flagged = c.post(f"/searches/{running['id']}/cancel").json()
        assert flagged["status"] == "running" and flagged["cancel_requested"] is True

        done = service.submit(c)
        mark_running(service.database_url, done["id"], "w")
        mark_finished(service.database_url, done["id"], SearchStatus(final), result={"best": None} if
                      final == "succeeded" else None, error=None if final == "succeeded" else "boom")
        conflict = c.post(f"/searches/{done['id']}/cancel")
        assert conflict.status_code == 409 and f"already {final}" in conflict.json()["detail"]
        assert c.get(f"/searches/{done['id']}").json()["status"] == final
