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

The load generator shares the machine with what it measures, so its own cost is part of the result:
``--client raw`` (default) speaks HTTP/1.1 with keep-alive over plain asyncio streams (what wrk or k6
do in compiled code), ``--client httpx`` uses httpx's AsyncClient, as the CLI does. The table reports the
CPU milliseconds per request of the load generator and of the API processes, so the two can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
import psutil
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


class RawClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a few microseconds of CPU per request, so
    the load generator takes little of the CPU it is measuring. Any transport error closes the
    connection (the next request reconnects) and is reported to the caller as ``OSError``."""

    def __init__(self, base: str, token: str) -> None:
        self.host, self.port = base.removeprefix("http://").split(":")
        self.auth = f"Authorization: Bearer {token}\r\nHost: {self.host}:{self.port}\r\n"
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, int(self.port))
            reader, writer = self.streams
            head = f"{method} {path} HTTP/1.1\r\n{self.auth}"
            if body:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            response = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            status = int(response[9:12])
            length = next((int(line.split(":", 1)[1]) for line in response.split("\r\n")
                           if line.startswith("content-length:")), None)
            if length is None:
                raise OSError(f"response without Content-Length: {response[:200]!r}")
            payload = await reader.readexactly(length)
            if "connection: close" in response:
                await self.close()
            return status, payload
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            await self.close()
            raise OSError(str(exc)) from exc

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class HttpxClient:
    """The same interface over httpx (what the CLI uses), for comparing load generators."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            r = await self.client.request(method, path, content=body or None,
                                          headers={"Content-Type": "application/json"} if body else None)
        except httpx.HTTPError as exc:
            raise OSError(str(exc)) from exc
        return r.status_code, r.content

    async def close(self) -> None:
        await self.client.aclose()


CLIENTS: dict[str, type[RawClient] | type[HttpxClient]] = {"raw": RawClient, "httpx": HttpxClient}
SPEC_BODY = json.dumps(SPEC).encode()


async def client_loop(make: type[RawClient] | type[HttpxClient], base: str, token: str, until: float,
                      lat: dict[str, list[float]], codes: list[int], ids: list[str], poll: float, polls: int) -> None:
    """One client: submit a search, then poll its status ``polls`` times every ``poll`` seconds (what
    ``nas status --watch`` does, every 2 s by default); with ``poll == 0`` it fires back-to-back."""
    c = make(base, token)
    try:
        await asyncio.sleep(random.uniform(0, poll * polls))  # spread over one cycle: no thundering herd
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                status, body = await c.request("POST", "/searches", SPEC_BODY)
            except OSError:  # counted as a server failure, never hidden
                codes.append(599)
                continue
            lat["POST /searches"].append(time.perf_counter() - t0)
            codes.append(status)
            if status != 202:
                continue
            ids.append(json.loads(body)["id"])
            for _ in range(polls):
                if poll:
                    await asyncio.sleep(poll)
                t0 = time.perf_counter()
                try:
                    status, _ = await c.request("GET", f"/searches/{ids[-1]}")
                except OSError:
                    codes.append(599)
                    continue
                lat["GET /searches/{id}"].append(time.perf_counter() - t0)
                codes.append(status)
    finally:
        await c.close()


async def phase1(make: type[RawClient] | type[HttpxClient], base: str, token: str, clients: int, seconds: float,
                 poll: float, polls: int) -> tuple[dict[str, list[float]], list[int], list[str]]:
    lat: dict[str, list[float]] = {"POST /searches": [], "GET /searches/{id}": []}
    codes: list[int] = []
    ids: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(client_loop(make, base, token, until, lat, codes, ids, poll, polls)
                           for _ in range(clients)))
    return lat, codes, ids


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """CPU time of the API: its process and every worker process it started."""
    try:
        root = psutil.Process(proc.pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
        return total
    except psutil.NoSuchProcess:
        return float("nan")


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
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw", help="load generator's HTTP client")
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
        make = CLIENTS[args.client]
        asyncio.run(phase1(make, base, token, 8, 3.0, 0.0, 1))
        runs = {}
        for label, poll, polls in (("watching", args.poll, 5), ("back-to-back", 0.0, 1)):
            console.print(f"  {label} ...")
            t0, own0, api0 = time.perf_counter(), time.process_time(), cpu_seconds(api)
            lat, codes, ids = asyncio.run(phase1(make, base, token, args.clients, args.seconds, poll, polls))
            requests = max(1, sum(len(v) for v in lat.values()))
            cpu = ((time.process_time() - own0) * 1000 / requests, (cpu_seconds(api) - api0) * 1000 / requests)
            runs[label] = (lat, codes, ids, time.perf_counter() - t0, cpu)
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
                        f"{args.poll:g} s; load generator: {args.client} client)")
    for col in ("clients", "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
                "CPU ms/req: client / API"):
        table.add_column(col, justify="right")
    for label, (lat, _, _, wall, (client_cpu, api_cpu)) in runs.items():
        for endpoint, values in lat.items():
            table.add_row(label, endpoint, str(len(values)), f"{len(values) / wall:.0f}",
                          f"{statistics.median(values) * 1000:.1f}", f"{pct(values, .95):.1f}",
                          f"{pct(values, .99):.1f}", f"{max(values) * 1000:.1f}",
                          f"{client_cpu:.2f} / {api_cpu:.2f}")
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
