"""The result in words, for people: whether the best network is within T, and by which measurement."""

from __future__ import annotations

from typing import Any


def latency_words(summary: dict[str, Any], target_ms: float) -> str:
    """``1.150 ms = 0.986 x T (measured again at the end with T's reference, p10-p90 1.141-1.162 ms)``, or the
    search's own latency when the network was not measured again."""
    final = summary.get("final_latency")
    if final:
        how = "measured again at the end" + (" with T's reference" if final.get("reference_median_ms") else "")
        return (f"{final['latency_ms']:.3f} ms = {final['ratio']:.3f} x T ({how}, p10-p90 "
                f"{final['p10_ms']:.3f}-{final['p90_ms']:.3f} ms, {final['runs']} runs)")
    return f"{summary['latency_ms']:.3f} ms = {summary['latency_ms'] / target_ms:.3f} x T ({summary['latency_source']})"


def describe_best(result: dict[str, Any], target_ms: float) -> str:
    """Lines for ``nas run``: the result, plainly marked within or OVER T, and the best-reward network over T
    when the reward ranked one above it."""
    best = result["best"]
    verdict = "within T" if best.get("within_target", True) else "OVER T: no network of this search is within T"
    reward = best["reward"] if best["reward"] is not None else float("nan")
    lines = [f"best: trial {best['trial']}  accuracy {best['accuracy']:.4f}  latency "
             f"{latency_words(best, target_ms)}  T = {target_ms:.3f} ms  reward {reward:.4f}  [{verdict}]"]
    over = result.get("over_target_best")
    if over:
        over_reward = over["reward"] if over["reward"] is not None else float("nan")
        lines.append(f"  (trial {over['trial']} ranked higher, accuracy {over['accuracy']:.4f} reward "
                     f"{over_reward:.4f}, but is over T: {latency_words(over, target_ms)})")
    return "\n".join(lines)
