"""Service under load: 50 concurrent clients, then 200 searches submitted at once.

    flock /tmp/nas-cpu.lock python benchmarks/service_load.py [--clients 50] [--seconds 30] [--burst 200]

Starts everything it measures on 127.0.0.1 and stops it afterwards: a fresh PostgreSQL database, the
API (`nas serve --workers 2`) and, for phase 2 only, one search worker (Celery, 2 processes) on Redis DB
12 (in a deployment workers run on other machines; here they would take the API's CPU). Phase 1 runs
twice for --seconds: "watching" clients behave like `nas submit` + `nas status --watch` (submit, then poll
the status every --poll s, 5 times, repeat); "back-to-back" clients fire POST then GET with no pause, which
measures saturation: with a closed loop, latency = clients / throughput (Little's law), so that row shows
what the machine can serve rather than what a client waits in normal use. Latency percentiles per endpoint.
Phase 2: --burst POSTs at once (searches with a zero time budget: each is stored, queued, picked up by
the worker, opens its Optuna study and finishes); waits until every one is in a final state. Reports
5xx counts and anything lost. Phase 1's searches are cancelled (queued -> cancelled) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.api_support import PG_SERVER, free_port  # noqa: E402

SPEC = {"name": "load", "space": "mobilenetv3-small", "device": "cpu-ort-1t",
        "latency": {"mode": "measured", "resolution": 224, "target_ms": 2.0},
        "budget": {"trials": 1, "seconds": 0.001}, "export_onnx": False}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def client_loop(base: str, token: str, until: float, lat: dict[str, list[float]], codes: list[int],
                      ids: list[str], poll: float, polls: int) -> None:
    """One client: submit a search, then poll its status ``polls`` times every ``poll`` seconds (what
    ``nas status --watch`` does, every 2 s by default); with ``poll == 0`` it fires back-to-back."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        await asyncio.sleep(random.uniform(0, poll * polls))  # spread over one cycle: no thundering herd
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                r = await c.post("/searches", json=SPEC)
            except httpx.HTTPError:  # counted as a server failure, never hidden
                codes.append(599)
                continue
            lat["POST /searches"].append(time.perf_counter() - t0)
            codes.append(r.status_code)
            if r.status_code != 202:
                continue
            ids.append(r.json()["id"])
            for _ in range(polls):
                if poll:
                    await asyncio.sleep(poll)
                t0 = time.perf_counter()
                try:
                    g = await c.get(f"/searches/{ids[-1]}")
                except httpx.HTTPError:
                    codes.append(599)
                    continue
                lat["GET /searches/{id}"].append(time.perf_counter() - t0)
                codes.append(g.status_code)


async def phase1(base: str, token: str, clients: int, seconds: float, poll: float,
                 polls: int) -> tuple[dict[str, list[float]], list[int], list[str]]:
    lat: dict[str, list[float]] = {"POST /searches": [], "GET /searches/{id}": []}
    codes: list[int] = []
    ids: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(client_loop(base, token, until, lat, codes, ids, poll, polls) for _ in range(clients)))
    return lat, codes, ids


async def burst(base: str, token: str, n: int) -> tuple[list[int], list[str]]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                 limits=limits) as c:
        responses = await asyncio.gather(*(c.post("/searches", json={**SPEC, "name": f"burst-{i}"})
                                           for i in range(n)))
    return [r.status_code for r in responses], [r.json()["id"] for r in responses if r.status_code == 202]


def start_api(env: dict[str, str], log: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``nas serve`` as a user runs it, with ``workers`` processes, on a free port of 127.0.0.1."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nas", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)], cwd=REPO, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    os.killpg(proc.pid, 9)
    raise RuntimeError(f"API did not answer within 90 s:\n{log.read_text()[-3000:]}")


def stop_api(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between a watching client's status polls")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes (`nas serve --workers`)")
    args = parser.parse_args()
    import psycopg
    import redis
    from sqlalchemy.engine import make_url

    from nas.service import create_token, list_searches, request_cancel

    redis_url = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(redis_url).flushdb()
    name = f"nas_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_SERVER).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    home = Path(f"/tmp/{name}")
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": url, "NAS_REDIS_URL": redis_url, "NAS_HOME": str(home),
                "NAS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)})
    api, base = start_api(env, home / "api.log", args.api_workers)
    worker: subprocess.Popen[bytes] | None = None
    console = Console(width=140)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on `timeout`/kill
    try:
        token_record, token = create_token(url, "load")
        console.print(f"API at {base}; phase 1 ...")
        # Warm-up, not measured: each API process imports Celery and opens its pools on its first requests.
        asyncio.run(phase1(base, token, 8, 3.0, 0.0, 1))
        runs = {}
        for label, poll, polls in (("watching", args.poll, 5), ("back-to-back", 0.0, 1)):
            console.print(f"  {label} ...")
            t0 = time.perf_counter()
            lat, codes, ids = asyncio.run(phase1(base, token, args.clients, args.seconds, poll, polls))
            runs[label] = (lat, codes, ids, time.perf_counter() - t0)
        codes = [c for run in runs.values() for c in run[1]]
        ids = [i for run in runs.values() for i in run[2]]
        console.print(f"phase 1 done: {len(codes)} responses; cancelling {len(ids)} searches, phase 2 ...")
        # The search worker starts only now: in a deployment it runs on other machines, and here its CPU
        # would be taken from the API that phase 1 measures. Phase 2 measures the whole pipeline.
        worker = subprocess.Popen([sys.executable, "-m", "nas", "worker", "-Q", "search", "-c", "2", "--loglevel",
                                   "WARNING"], env=env, stdout=(home / "worker.log").open("wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        for search_id in ids:
            try:
                request_cancel(url, search_id, token_record.id)
            except Exception:  # already picked up and finished by the worker: final anyway
                pass
        t0 = time.perf_counter()
        burst_codes, burst_ids = asyncio.run(burst(base, token, args.burst))
        submit_s = time.perf_counter() - t0
        deadline = time.monotonic() + 1800
        final: dict[str, str] = {}
        while time.monotonic() < deadline:
            records, _ = list_searches(url, token_record.id, offset=0, limit=10_000)
            final = {r.id: r.status for r in records if r.id in set(burst_ids) and r.status.is_final()}
            if len(final) == len(burst_ids):
                break
            console.print(f"  {len(final)}/{len(burst_ids)} final", end="\r")
            time.sleep(2)
        drain_s = time.perf_counter() - t0
        stored = {r.id for r in list_searches(url, token_record.id, offset=0, limit=10_000)[0]}
    finally:
        if worker is not None:
            os.killpg(worker.pid, 15)
            worker.wait(30)
        stop_api(api)
        redis.Redis.from_url(redis_url).flushdb()
        from nas.storage import engine_for

        engine_for(url).dispose()
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    table = Table(title=f"phase 1: {args.clients} concurrent clients, {args.seconds:g} s each way "
                        f"(API: {args.api_workers} uvicorn processes; watching = submit, then poll every "
                        f"{args.poll:g} s)")
    for col in ("clients", "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right")
    for label, (lat, _, _, wall) in runs.items():
        for endpoint, values in lat.items():
            table.add_row(label, endpoint, str(len(values)), f"{len(values) / wall:.0f}",
                          f"{statistics.median(values) * 1000:.1f}", f"{pct(values, .95):.1f}",
                          f"{pct(values, .99):.1f}", f"{max(values) * 1000:.1f}")
    console.print(table)
    errors = sum(c >= 500 for c in codes + burst_codes)  # 599: the connection failed
    statuses: dict[str, int] = {}
    for s in final.values():
        statuses[s] = statuses.get(s, 0) + 1
    console.print(f"phase 2: {args.burst} POSTs at once -> {sum(c == 202 for c in burst_codes)} accepted in "
                  f"{submit_s:.1f} s; stored {len(set(burst_ids) & stored)}/{len(burst_ids)}; final "
                  f"{len(final)}/{len(burst_ids)} after {drain_s:.0f} s ({statuses}); 5xx responses overall: {errors}")


if __name__ == "__main__":
    main()
