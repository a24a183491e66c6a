"""``nas report ID``: a finished search as one self-contained HTML page and a PNG Pareto plot, found by service
search id, study name or ``nas run`` output folder; only measured numbers are drawn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nas.report import block_rows, load_report

if TYPE_CHECKING:
    from .finished_search import FinishedSearch

pytest_plugins = ["tests.finished_search"]  # finished_search: one real tiny NSGA-II search per session

NAS = str(Path(sys.executable).with_name("nas"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NAS, *args], capture_output=True, text=True, timeout=120)


def test_the_html_report_of_a_service_search_shows_trials_target_front_and_the_best_blocks(
        finished_search: FinishedSearch, tmp_path: Path) -> None:
    html_path, png_path = tmp_path / "report.html", tmp_path / "pareto.png"
    done = nas("report", finished_search.search_id, "--database", finished_search.database_url,
               "-o", str(html_path), "--png", str(png_path))
    assert done.returncode == 0, done.stderr
    html = html_path.read_text()
    best, target = finished_search.result["best"], finished_search.result["target_ms"]
    assert f"{finished_search.trials} trials: {finished_search.trials} completed" in html
    assert best["arch_string"] in html
    assert f"T = {target:.3f} ms" in html  # the summary line and the label of the vertical line in the plot
    assert html.count("<svg") == 2 and "<script" not in html and " src=" not in html  # self-contained
    for column in ("stage", "block", "kernel", "expansion (mid)", "SE", "activation", "groups", "channels",
                   "stride", "repeats"):
        assert f"<th>{column}</th>" in html
    assert png_path.read_bytes().startswith(PNG_MAGIC)
    from PIL import Image

    with Image.open(png_path) as image:
        image.verify()
        assert image.size[0] >= 600 and image.size[1] >= 400


def test_the_report_agrees_with_what_the_search_wrote_whichever_way_it_is_found(
        finished_search: FinishedSearch) -> None:
    by_id = load_report(finished_search.search_id, finished_search.database_url)
    by_name = load_report(finished_search.study_name, finished_search.database_url)
    by_folder = load_report(str(finished_search.run_dir), finished_search.database_url)
    assert by_id.source.search_id == finished_search.search_id and by_id.source.status == "succeeded"
    for report in (by_id, by_name, by_folder):
        assert report.source.study_name == finished_search.study_name
        assert report.best is not None and report.best.number == finished_search.result["best"]["trial"]
        assert report.front == [t["trial"] for t in finished_search.result["pareto"]]
        assert len(report.complete) == finished_search.trials


def test_references_are_drawn_only_from_measured_numbers(finished_search: FinishedSearch) -> None:
    report = load_report(finished_search.search_id, finished_search.database_url)
    target = finished_search.result["target_reference"]
    (point,) = [r for r in report.references if r.name == target["name"]]
    assert point.accuracy is None and point.latency_ms == pytest.approx(target["ms"])  # latency-only mark
    assert any(n.startswith("mobilenetv3-small-1.0: ") and "left out" in n for n in report.reference_notes)
    assert not any(r.space != "mobilenetv3-small" for r in _reference_archs(report.references))


def _reference_archs(points: list[Any]) -> list[Any]:
    from nas.arch import load_architecture

    return [load_architecture(p.name) for p in points]


def test_a_reference_trained_in_the_study_gets_a_labelled_point(tmp_path: Path) -> None:
    """A study (real Optuna storage) where one trial is the published ShuffleNetV2 0.5x on the task."""
    import optuna
    from optuna.trial import create_trial

    from nas.arch import load_architecture, to_string
    from nas.report import write_html, write_pareto_png

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study = optuna.create_study(study_name="with-reference", storage=url, direction="maximize")
    study.set_user_attr("target_ms", 2.0)
    for i, (name, acc, ms) in enumerate([("shufflenetv2-0.5", 0.91, 1.5), ("shufflenetv2-1.0", 0.95, 2.4)]):
        arch = load_architecture(name).with_(resolution=128, num_classes=10)
        if i == 1:  # a searched candidate, not the reference itself
            arch = arch.with_(head={**arch.head.model_dump(), "dropout": 0.1})
        study.add_trial(create_trial(value=acc * (ms / 2.0) ** -0.07, user_attrs={
            "architecture": arch.model_dump(mode="json"), "arch_hash": arch.hash, "arch_string": to_string(arch),
            "accuracy": acc, "latency_ms": ms, "latency_source": "measured", "reward": acc * (ms / 2.0) ** -0.07,
            "device": "cpu-ort-1t"}))
    report = load_report("with-reference", url)
    assert [(r.name, r.accuracy, r.latency_ms) for r in report.references] == [("shufflenetv2-0.5", 0.91, 1.5)]
    assert "trial 0" in report.references[0].how
    assert any(n.startswith("shufflenetv2-1.0: ") for n in report.reference_notes)  # dropout differs: not it
    html = write_html(report, tmp_path / "r.html").read_text()
    assert "shufflenetv2-0.5" in html and "best reward so far" in html
    assert write_pareto_png(report, tmp_path / "p.png").read_bytes().startswith(PNG_MAGIC)


def test_the_block_table_merges_equal_consecutive_blocks_into_repeats() -> None:
    from nas.arch import load_architecture

    arch = load_architecture("shufflenetv2-1.0")
    rows = block_rows(arch)
    assert rows[0].stage == "stem" and rows[-1].stage == "head"
    assert sum(r.repeats for r in rows[1:-1]) == sum(len(stage) for stage in arch.stages)
    assert [(r.stage, r.stride, r.repeats) for r in rows[1:-1]] == [("s0", 2, 1), ("s0", 1, 3), ("s1", 2, 1),
                                                                     ("s1", 1, 7), ("s2", 2, 1), ("s2", 1, 3)]


def test_an_unknown_id_is_one_line_and_exit_code_2(finished_search: FinishedSearch, tmp_path: Path) -> None:
    done = nas("report", "no-such-search", "--database", finished_search.database_url, "-o", str(tmp_path / "x.html"))
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown search or study 'no-such-search'"
    assert not (tmp_path / "x.html").exists()


def test_a_missing_database_file_is_not_created(tmp_path: Path) -> None:
    from nas.errors import NotFoundError

    missing = tmp_path / "none.db"
    with pytest.raises(NotFoundError, match="unknown database"):
        load_report("anything", f"sqlite:///{missing}")
    assert not missing.exists()
