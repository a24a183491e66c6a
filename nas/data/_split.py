"""Seeded, stratified subsets and train/validation splits (numpy only, so they are cheap to test)."""

from __future__ import annotations

import numpy as np


def stratified_take(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices whose class proportions match ``labels`` as closely as integers allow.

    Quotas by the largest-remainder method (ties to the lower class id), members of each class drawn
    with ``rng``; the result is sorted, so it depends only on the seed and the labels.
    """
    if not 0 <= n <= len(labels):
        raise ValueError(f"cannot take {n} of {len(labels)} examples")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n / len(labels))
    quota = np.floor(exact).astype(np.int64)
    short = n - int(quota.sum())
    if short:
        order = sorted(range(len(classes)), key=lambda i: (-(exact[i] - quota[i]), i))
        for i in order[:short]:
            quota[i] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), each in a seeded random order, classes stratified."""
    rng = np.random.default_rng([seed, 1])
    n_val = min(max(int(round(len(labels) * val_fraction)), 1), len(labels) - 1)
    val = stratified_take(labels, n_val, rng)
    mask = np.ones(len(labels), dtype=bool)
    mask[val] = False
    train = np.flatnonzero(mask)
    return rng.permutation(train), rng.permutation(val)


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, stratified subset of ``n`` examples."""
    return stratified_take(labels, n, np.random.default_rng([seed, 0]))
