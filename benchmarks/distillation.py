"""Knowledge distillation: the same network trained for the same epochs with and without a teacher.

    python benchmarks/distillation.py --dataset imagefolder:/data/fashion-mnist --subset 4000 \
        --student mobilenetv3-small-0.75 --teacher-arch mobilenetv3-large-1.0 --teacher-epochs 15 \
        --epochs 8 --seeds 0 1 2 --out benchmarks/results/DATE/distillation

1. The teacher: a state file (``--teacher FILE.pt``, e.g. a supernet's largest subnet exported by
   ``nas train``) or trained here first with ``nas train``'s code (``--teacher-arch``, ``--teacher-epochs``).
2. For every seed, the student is trained twice by ``nas.training.train_network`` with the same recipe,
   data order and initial weights: cross-entropy only, and ``alpha`` KD + (1 - alpha) CE at ``temperature``.
3. The table gives each seed's validation accuracy of both runs and the paired difference, then the
   mean difference with its standard deviation and range over seeds (the spread to judge it by).

Raw JSON is written after every run; an interrupted benchmark resumes its runs (their checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _dataset(text: str, subset: int | None) -> dict[str, Any]:
    kind, _, path = text.partition(":")
    return {"kind": kind, "resolution": 32, "subset": subset, **({"path": path} if path else {})}


def table(record: dict[str, Any]) -> str:
    rows = ["| seed | without KD | with KD | difference (points) |", "|---|---|---|---|"]
    for run in record["runs"]:
        if "with_kd" in run and "without_kd" in run:
            rows.append(f"| {run['seed']} | {run['without_kd']['accuracy']:.4f} | {run['with_kd']['accuracy']:.4f} "
                        f"| {100 * (run['with_kd']['accuracy'] - run['without_kd']['accuracy']):+.2f} |")
    s = record.get("summary")
    if s:
        rows.append(f"| mean | {s['without_kd_mean']:.4f} | {s['with_kd_mean']:.4f} "
                    f"| {s['difference_mean_points']:+.2f} "
                    f"(sd {s['difference_sd_points']:.2f}, range {s['difference_min_points']:+.2f} .. "
                    f"{s['difference_max_points']:+.2f}) |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", help="digits, cifar10:DIR or imagefolder:DIR.")
    parser.add_argument("--subset", type=int)
    parser.add_argument("--student", default="mobilenetv3-small-0.75", help="Reference name, JSON file or string.")
    parser.add_argument("--teacher", help="A state file (.pt); otherwise --teacher-arch is trained first.")
    parser.add_argument("--teacher-arch", default="mobilenetv3-large-1.0")
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("--seeds: at least two, or there is no spread")

    from nas.arch import load_architecture
    from nas.training import TrainJob, train_network

    args.out.mkdir(parents=True, exist_ok=True)
    result_file = args.out / "distillation.json"
    dataset = _dataset(args.dataset, args.subset)
    record: dict[str, Any] = {
        "benchmark": "knowledge distillation", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "note": args.note},
        "dataset": dataset, "student": args.student, "epochs": args.epochs, "alpha": args.alpha,
        "temperature": args.temperature, "runs": []}

    def save() -> None:
        result_file.write_text(json.dumps(record, indent=2) + "\n")

    def job(seed: int, epochs: int, teacher: str | None) -> TrainJob:
        return TrainJob.model_validate({
            "dataset": dataset, "recipe": {"epochs": epochs, "lr": 0.05, "batch_size": 64, "resolution": 32,
                                           "seed": seed, "threads": 1},
            "teacher": {"source": teacher, "alpha": args.alpha, "temperature": args.temperature} if teacher else None})

    start = time.perf_counter()
    teacher = args.teacher
    if teacher is None:
        arch = load_architecture(args.teacher_arch)
        summary = train_network(arch, job(0, args.teacher_epochs, None), args.out / "teacher", onnx=False)
        teacher = summary["files"]["state"]
        record["teacher"] = {"arch": args.teacher_arch, "epochs": args.teacher_epochs,
                             "accuracy": summary["accuracy"], "seconds": summary["seconds_this_run"]}
        print(f"teacher {args.teacher_arch}: {summary['accuracy']:.4f}", flush=True)
    else:
        record["teacher"] = {"state": teacher}
        trained = Path(teacher).with_name("summary.json")  # written by nas train: its accuracy and recipe
        if trained.is_file():
            known = json.loads(trained.read_text())
            record["teacher"].update(accuracy=known.get("accuracy"), job=known.get("job"))
    save()
    student = load_architecture(args.student)
    for seed in args.seeds:
        run: dict[str, Any] = {"seed": seed}
        record["runs"].append(run)
        for key, source in (("without_kd", None), ("with_kd", teacher)):
            summary = train_network(student, job(seed, args.epochs, source), args.out / f"seed{seed}-{key}", onnx=False)
            run[key] = {"accuracy": summary["accuracy"], "history": summary["history"],
                        "seconds": summary["seconds_this_run"]}
            print(f"seed {seed} {key}: {summary['accuracy']:.4f}", flush=True)
            save()
    diffs = [100 * (r["with_kd"]["accuracy"] - r["without_kd"]["accuracy"]) for r in record["runs"]]
    record["summary"] = {
        "without_kd_mean": statistics.fmean(r["without_kd"]["accuracy"] for r in record["runs"]),
        "with_kd_mean": statistics.fmean(r["with_kd"]["accuracy"] for r in record["runs"]),
        "difference_mean_points": statistics.fmean(diffs), "difference_sd_points": statistics.stdev(diffs),
        "difference_min_points": min(diffs), "difference_max_points": max(diffs), "seeds": len(diffs)}
    record["seconds_total"] = round(time.perf_counter() - start, 1)
    save()
    print(table(record))


if __name__ == "__main__":
    main()
