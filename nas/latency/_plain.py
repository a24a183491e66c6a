"""A plain timing loop over a deployable file (``.onnx``, ``.tflite``, OpenVINO ``.xml``), as a user would
write it: load, one random input, warm-up, then N timed runs and their median.

It is the reference the profiles' measurements are checked against (same artifact, same runtime, no
quiet-run filtering), and a stand-in for a device's benchmark binary: ``python -m nas.latency._plain
MODEL --runs 200 --threads 1`` prints ``median_ms=...`` (or JSON), which a remote profile can parse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.latency._timing import TimingSettings, summarize
from nas.latency._worker import LoadMeter, cpu_lock


def load_runner(path: Path, threads: int = 1) -> tuple[Callable[[Any], Any], Any]:
    """``(run, x)``: ``run(x)`` does one inference of the file on a random input ``x`` of its shape and
    returns the first output (as numpy)."""
    import numpy as np

    rng = np.random.default_rng(0)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        return (lambda x: session.run(None, {inp.name: x})[0]), rng.standard_normal(shape, dtype=np.float32)
    if suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        from nas.latency._rt_litert import interpreter_input

        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        out = interpreter.get_output_details()[0]["index"]

        def run_tflite(x: Any) -> Any:
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            return interpreter.get_tensor(out)

        return run_tflite, interpreter_input(interpreter)
    if suffix == ".xml":
        from nas._openvino import import_openvino

        core = import_openvino().Core()
        model = core.read_model(str(path))
        shape = [d.get_length() if d.is_static else 1 for d in model.input(0).get_partial_shape()]
        model.reshape(shape)
        compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
        return (lambda x: compiled(x)[0]), rng.standard_normal(shape, dtype=np.float32)
    raise ValueError(f"{path}: not a .onnx, .tflite or OpenVINO .xml file")


def load_predictor(path: Path, threads: int = 1) -> Callable[[Any], Any]:
    """``predict(x)``: float logits of the file for float NCHW images ``x`` (one batch as exported),
    whatever the file's layout (NHWC for LiteRT) and input/output types (int8 for a full-integer model)."""
    import numpy as np

    run, sample = load_runner(path, threads)
    if path.suffix.lower() != ".tflite":
        return lambda x: np.asarray(run(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path))
    inp, out = details.get_input_details()[0], details.get_output_details()[0]

    def predict(x: Any) -> Any:
        nhwc = np.ascontiguousarray(np.transpose(np.asarray(x, dtype=np.float32), (0, 2, 3, 1)))
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            nhwc = np.clip(np.round(nhwc / scale) + zero, info.min, info.max).astype(inp["dtype"])
        y = run(nhwc)
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float32)

    return predict


def plain_timing(path: Path, runs: int = 200, warmup: int = 20, threads: int = 1) -> list[float]:
    """Milliseconds of each of ``runs`` inferences after ``warmup`` ones."""
    return interleaved_timing([path], runs, warmup, threads, rounds=1)[0]


def interleaved_timing(paths: list[Path], runs: int = 200, warmup: int = 20, threads: int = 1, rounds: int = 5,
                       seed: int = 0, lock: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                       ) -> list[list[float]]:
    """Milliseconds of ``runs`` inferences of each file, timed in ``rounds`` rounds that each visit every file
    once in a shuffled order (``runs / rounds`` runs a visit, after ``warmup`` runs).

    Measured on a quiet 2-core VM, one loop of 200 runs per file agreed with itself twenty minutes later
    (+-10%) on 42% of 50 networks: the host drifts between files. Spread over rounds, every file sees the
    same drift, so the files' medians can be compared with each other and with an interleaved measurement.
    Each visit loads its file afresh and drops it after, as a user's loop holds one model: with all 100
    files of a validation resident in one process (1.4 GB), ShuffleNet int8 networks ran 8-11% slower than
    interleaved six at a time, 1-9% slower than in a loop of their own (docs/latency.md, 2026-11-30 evening)."""
    import random

    times: list[list[float]] = [[] for _ in paths]
    per_visit = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    rng = random.Random(seed)
    for r in range(rounds):
        order = list(range(len(paths)))
        rng.shuffle(order)
        for i in order:
            run, x = load_runner(paths[i], threads)
            with lock() if lock else contextlib.nullcontext():
                for _ in range(warmup):
                    run(x)
                for _ in range(per_visit[r]):
                    t0 = time.perf_counter_ns()
                    run(x)
                    times[i].append((time.perf_counter_ns() - t0) * 1e-6)
            del run, x  # one model in memory at a time
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas.latency._plain", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="+", help="One or more files, timed one after the other.")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="One JSON line per file.")
    parser.add_argument("--cpus", help="Pin to these CPUs (comma-separated) and hold the project's measuring "
                                       "lock on them while timing each file, so no measurement overlaps.")
    parser.add_argument("--rounds", type=int, default=1, help=(
        "Interleave: time the files in this many shuffled rounds (runs / rounds each), so host drift "
        "touches every file alike; each visit loads its file and drops it after."))
    args = parser.parse_args(argv)
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    if args.rounds > 1:
        meter = LoadMeter()
        all_times = interleaved_timing(args.model, args.runs, args.warmup, args.threads, args.rounds,
                                       lock=(lambda: cpu_lock(cpus)) if cpus else None)
        load = meter.lap()  # one figure for the whole interleaved run
        for times in all_times:
            _report(times, load, args.json)
        return 0
    for model in args.model:
        with cpu_lock(cpus) if cpus else contextlib.nullcontext():
            meter = LoadMeter()
            times = plain_timing(model, args.runs, args.warmup, args.threads)
            load = meter.lap()
        _report(times, load, args.json)
    return 0


def _report(times: list[float], load: dict[str, Any], as_json: bool) -> None:
    median = statistics.median(times)
    if as_json:
        # Beside the plain median, the project's own statistic over the same runs (``_timing.summarize``):
        # where the two references part, this says how much of it is the statistic and how much the process.
        quiet = summarize([times], TimingSettings().quiet_tolerance)
        latency = {"median_ms": median, "runs": len(times), "quiet_median_ms": quiet.median_ms,
                   "quiet_share": 1 - quiet.disturbed}
        sys.stdout.write(json.dumps({"latency": latency, "load": load}) + "\n")
    else:
        sys.stdout.write(f"runs={len(times)} median_ms={median:.4f}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
