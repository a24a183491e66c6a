"""One self-contained HTML page (figures inlined as SVG, no scripts, no external files) that can be mailed
or attached to an issue as it is."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from typing import Any

from nas.report._blocks import block_rows
from nas.report._data import Report, TrialPoint

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 0.2em 0.6em; border: 1px solid #ddd; }
th { background: #f4f4f4; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 0.85em; word-break: break-all; } .note { color: #666; font-size: 0.9em; }
figure { margin: 0.5em 0; } figure svg { max-width: 100%; height: auto; }
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{escape(_fmt(c))}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(report: Report) -> str:
    spec, src = report.spec, report.source
    done = len(report.complete)
    target = report.target_reference or {}
    t_line = (f"T = {report.target_ms:.3f} ms" + (f": measured latency of {target['name']}" if target else "")
              if math.isfinite(report.target_ms) else "no latency target recorded")
    rows = [
        ["study", src.study_name],
        ["service search", f"{src.search_id} ({src.status})" if src.search_id else "-"],
        ["trials", f"{len(report.trials)} trials: {done} completed, {report.count('PRUNED')} pruned, "
                   f"{report.count('FAIL')} failed"],
        ["space", report.space or "-"],
        ["device", f"{report.device}, latency at {report.resolution}x{report.resolution}"],
        ["latency target", t_line],
        ["reward", (spec.get("reward") or {}).get("kind", "pareto" if report.pareto else "-")],
        ["strategy", (spec.get("strategy") or {}).get("name", "-")],
        ["proxy", _proxy(spec)],
    ]
    return _table(["", ""], rows)


def _proxy(spec: dict[str, Any]) -> str:
    proxy = spec.get("proxy") or {}
    data, recipe = proxy.get("dataset") or {}, proxy.get("recipe") or {}
    if not data:
        return "-"
    subset = f", {data['subset']} images" if data.get("subset") else ""
    return (f"{data.get('kind')} at {data.get('resolution')}x{data.get('resolution')}{subset}; "
            f"epochs: {recipe.get('epochs', '?')}")


def _best(report: Report) -> str:
    best, arch = report.best, report.best_architecture
    if best is None or arch is None:
        return "<p>No trial completed: there is no best architecture yet.</p>"
    how = ("the most accurate trial within T (the fastest if none is within T)" if report.pareto
           else "the highest reward within T (the highest reward if none is within T)")
    facts = _table(["trial", "accuracy", "latency ms", "latency source", "reward", "params", "MACs", "hash"],
                   [[best.number, best.accuracy, best.latency_ms, best.latency_source, best.reward, best.params,
                     best.macs, arch.hash]], numeric={0, 1, 2, 4, 5, 6})
    rows = [[r.stage, r.type, r.kernel, r.expansion, "yes" if r.se else "", r.activation, r.groups, r.channels,
             r.stride, r.repeats] for r in block_rows(arch)]
    blocks = _table(["stage", "block", "kernel", "expansion (mid)", "SE", "activation", "groups", "channels",
                     "stride", "repeats"], rows, numeric={2, 6, 7, 8, 9})
    verdict = "".join(f"<p>{escape(line.strip())}</p>" for line in report.verdict.splitlines())
    return (f"<p>Chosen as {how}.</p>{verdict}{facts}<p>Architecture string:</p>"
            f"<p><code>{escape(best.arch_string or '')}</code></p><h3>Blocks</h3>{blocks}")


def _front(report: Report) -> str:
    by_number: dict[int, TrialPoint] = {t.number: t for t in report.trials}
    rows = [[t.number, t.accuracy, t.latency_ms, "yes" if (t.latency_ms or math.inf) <= report.target_ms else "no",
             t.params, t.macs] for n in report.front if (t := by_number.get(n))]
    return _table(["trial", "accuracy", "latency ms", "within T", "params", "MACs"], rows, numeric={0, 1, 2, 4, 5})


def _references(report: Report) -> str:
    rows = [[r.name, r.accuracy, r.latency_ms, r.how] for r in report.references]
    drawn = _table(["reference", "accuracy", "latency ms", "source"], rows, numeric={1, 2}) if rows else (
        "<p>No reference of this space was trained or measured in this database.</p>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.reference_notes)
    left = f'<p class="note">Not drawn (no numbers to draw):</p><ul class="note">{notes}</ul>' if notes else ""
    return drawn + left


def render_html(report: Report, pareto_svg: str, reward_svg: str) -> str:
    title = f"NAS report: {report.source.study_name}"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="note">Written {made} from the study in the database; numbers are as recorded by the trials.</p>
{_summary(report)}
<h2>Pareto front: accuracy vs latency</h2>
<figure>{pareto_svg}</figure>
{_front(report)}
<h3>Reference networks</h3>
{_references(report)}
<h2>Reward over trials</h2>
<figure>{reward_svg}</figure>
<h2>Best architecture</h2>
{_best(report)}
</body></html>
"""
