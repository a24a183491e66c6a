"""The report's two figures, drawn with matplotlib's Agg canvas (no pyplot, no display, no global state).

matplotlib is imported lazily: importing ``nas.report`` stays cheap for the API and the CLI.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from nas.report._data import Report, TrialPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GREY, FRONT, BEST, TARGET, REF = "#9e9e9e", "#1f77b4", "#d62728", "#e6550d", "#2ca02c"
LABEL_TRIALS_UP_TO = 40  # beyond this, trial numbers on the points are clutter


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def pareto_figure(report: Report) -> Figure:
    """Accuracy against latency: every completed trial, the front joined and highlighted, the best starred,
    T as a vertical line, references as labelled diamonds (or latency-only ticks on the axis)."""
    fig = _figure(8.0, 5.2)
    ax = fig.add_subplot()
    done = report.complete
    front = [t for n in report.front for t in done if t.number == n]
    _scatter(ax, [t for t in done if t.number not in set(report.front)], GREY, "trial", size=28)
    if front:
        ax.plot(*_xy(front), "-", color=FRONT, lw=1.4, zorder=2)
        _scatter(ax, front, FRONT, f"Pareto front ({len(front)})", size=46)
    if report.best is not None and report.best.latency_ms:
        ax.scatter(*_xy([report.best]), marker="*", s=260, color=BEST,
                   edgecolor="black", linewidth=0.6, zorder=5, label=f"best (trial {report.best.number})")
    if len(done) <= LABEL_TRIALS_UP_TO:
        for t in done:
            ax.annotate(str(t.number), (t.latency_ms or 0.0, t.accuracy or 0.0), textcoords="offset points",
                        xytext=(5, 4), fontsize=7, color="#444444")
    if math.isfinite(report.target_ms):
        ref = (report.target_reference or {}).get("name")
        ax.axvline(report.target_ms, ls="--", color=TARGET, lw=1.3, zorder=1,
                   label=f"T = {report.target_ms:.3f} ms" + (f" ({ref}, measured)" if ref else ""))
    _references(ax, report)
    ax.set_xlabel(f"latency (ms) on {report.device} at {report.resolution}x{report.resolution}"
                  + ("" if all(t.latency_source == "measured" for t in done) else "; hollow = predicted"))
    ax.set_ylabel("proxy accuracy")
    ax.set_title(f"{report.source.study_name}: accuracy vs latency ({len(done)} completed trials)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def _xy(trials: list[TrialPoint]) -> tuple[list[float], list[float]]:
    """(latencies, accuracies) of completed trials, which always have both."""
    return [t.latency_ms or 0.0 for t in trials], [t.accuracy or 0.0 for t in trials]


def _scatter(ax: Axes, trials: list[TrialPoint], color: str, label: str, size: float) -> None:
    if not trials:
        return
    measured = [t for t in trials if t.latency_source != "predicted"]
    predicted = [t for t in trials if t.latency_source == "predicted"]
    labelled = False
    for group, face in ((measured, color), (predicted, "none")):
        if group:
            ax.scatter(*_xy(group), s=size, facecolor=face,
                       edgecolor=color, linewidth=1.0, zorder=3, label=None if labelled else label)
            labelled = True


def _references(ax: Axes, report: Report) -> None:
    trained = [r for r in report.references if r.accuracy is not None]
    latency_only = [r for r in report.references if r.accuracy is None]
    if trained:
        ax.scatter([r.latency_ms for r in trained], [r.accuracy or 0.0 for r in trained], marker="D", s=50, color=REF,
                   edgecolor="black", linewidth=0.5, zorder=4, label="reference (trained here)")
        for r in trained:
            ax.annotate(r.name, (r.latency_ms, r.accuracy or 0.0), textcoords="offset points", xytext=(6, -10),
                        fontsize=8, color=REF)
    if latency_only:
        axis = ax.get_xaxis_transform()  # x in data units, y in axes fraction: a tick on the bottom axis
        ax.scatter([r.latency_ms for r in latency_only], [0.0] * len(latency_only), marker="^", s=70, color=REF,
                   transform=axis, clip_on=False, zorder=4, label="reference, latency only (accuracy not measured)")
        for r in latency_only:
            ax.annotate(r.name, (r.latency_ms, 0.02), xycoords=axis, rotation=90, fontsize=7, color=REF,
                        xytext=(3, 6), textcoords="offset points", va="bottom")


def reward_figure(report: Report) -> Figure:
    """Reward of every completed trial by trial number, and the running best. A Pareto search has no scalar
    reward: its accuracy is shown, and the running best counts only trials within T."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(8.0, 3.6)
    ax = fig.add_subplot()
    done = report.complete
    if report.pareto:
        ys = [t.accuracy or 0.0 for t in done]
        ok = [(t.latency_ms or math.inf) <= report.target_ms for t in done]
        ylabel, best_label = "accuracy (Pareto search: no scalar reward)", "best accuracy within T so far"
    else:
        ys = [t.reward if t.reward is not None else math.nan for t in done]
        ok = [True] * len(done)
        ylabel, best_label = "reward", "best reward so far"
    xs = [t.number for t in done]
    within = [(x, y) for x, y, k in zip(xs, ys, ok, strict=True) if k]
    beyond = [(x, y) for x, y, k in zip(xs, ys, ok, strict=True) if not k]
    if within:
        ax.scatter([x for x, _ in within], [y for _, y in within], s=26, color=FRONT, zorder=3,
                   label="trial" + (" within T" if report.pareto else ""))
    if beyond:
        ax.scatter([x for x, _ in beyond], [y for _, y in beyond], s=26, facecolor="none", edgecolor=GREY, zorder=3,
                   label="trial beyond T")
    running, best = [], -math.inf
    for x, y, k in zip(xs, ys, ok, strict=True):
        if k and not math.isnan(y):
            best = max(best, y)
        if math.isfinite(best):
            running.append((x, best))
    if running:
        ax.step(*zip(*running, strict=True), where="post", color=BEST, lw=1.5, label=best_label, zorder=2)
    pruned, failed = report.count("PRUNED"), report.count("FAIL")
    ax.set_title(f"{len(done)} completed, {pruned} pruned, {failed} failed", fontsize=10)
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(alpha=0.3)
    if within or beyond:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def to_svg(fig: Figure) -> str:
    """SVG with text kept as text, so the report stays small and its labels can be searched."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined in HTML
