"""An accuracy predictor: a small MLP over a fixed-length encoding of an architecture in its space.

Fitted (scikit-learn) on subnets evaluated one-shot, then stored as plain JSON weights and evaluated in
numpy, so ranking thousands of candidates takes milliseconds and loading it never unpickles anything.
The encoding is read from the architecture document itself (not from sampler choices), so anything a
strategy proposes, NetAdapt's shrunk widths included, can be scored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch import Activation, Architecture
from nas.errors import SupernetError
from nas.spaces import SearchSpace

FORMAT = "nas-accuracy-predictor/1"


def _scale(space: SearchSpace) -> dict[str, Any]:
    from nas.supernet._sampling import largest_architecture

    big = largest_architecture(space, 1)
    return {"stem": big.stem.channels, "depths": [max(st.depth) for st in space.definition.stages],
            "outs": [stage[0].out for stage in big.stages], "head": big.head.channels or 1,
            "hidden": big.head.hidden or 1}


def encode(arch: Architecture, scale: dict[str, Any]) -> np.ndarray:
    """Per block position (present, kernel, expansion, SE, hswish, log2 groups), per stage (depth, width),
    stem and head widths: every value scaled to about [0, 1]; absent blocks are zeros."""
    feats: list[float] = [arch.stem.channels / scale["stem"], float(arch.stem.activation is Activation.hswish)]
    blocks = arch.blocks()
    i = 0
    for s, depth in enumerate(scale["depths"]):
        stage = arch.stages[s] if s < len(arch.stages) else []
        feats += [len(stage) / depth, (stage[0].out if stage else 0) / scale["outs"][s]]
        for b in range(depth):
            if b < len(stage):
                _, cin, block = blocks[i]
                i += 1
                feats += [1.0, block.kernel / 7, block.mid / cin / 6, float(block.se),
                          float(block.activation is Activation.hswish), math.log2(block.groups) / 2]
            else:
                feats += [0.0] * 6
    feats += [(arch.head.channels or 0) / scale["head"], (arch.head.hidden or 0) / scale["hidden"]]
    return np.asarray(feats, dtype=np.float64)


class AccuracyPredictor:
    """``predict(archs) -> accuracies``; ``fit`` from (architecture, accuracy) pairs; JSON round trip."""

    def __init__(self, space: SearchSpace, params: dict[str, Any]) -> None:
        self.space, self.params = space, params
        self._scale = params["scale"]

    @classmethod
    def fit(cls, space: SearchSpace, archs: list[Architecture], accuracies: list[float], *, seed: int = 0,
            hidden: tuple[int, ...] = (64, 64)) -> AccuracyPredictor:
        from sklearn.neural_network import MLPRegressor

        if len(archs) != len(accuracies) or len(archs) < 4:
            raise SupernetError(f"an accuracy predictor needs at least 4 evaluated subnets, got {len(archs)}")
        scale = _scale(space)
        x = np.stack([encode(a, scale) for a in archs])
        y = np.asarray(accuracies, dtype=np.float64)
        mean, std = x.mean(0), x.std(0) + 1e-8
        y_mean, y_std = float(y.mean()), float(y.std() + 1e-8)
        mlp = MLPRegressor(hidden_layer_sizes=hidden, alpha=1e-3, max_iter=3000, random_state=seed,
                           learning_rate_init=1e-3, n_iter_no_change=50)
        mlp.fit((x - mean) / std, (y - y_mean) / y_std)
        params = {"format": FORMAT, "space": space.name, "scale": scale, "x_mean": mean.tolist(),
                  "x_std": std.tolist(), "y_mean": y_mean, "y_std": y_std,
                  "weights": [w.tolist() for w in mlp.coefs_], "biases": [b.tolist() for b in mlp.intercepts_],
                  "fitted_on": len(archs)}
        return cls(space, params)

    def predict(self, archs: list[Architecture]) -> np.ndarray:
        p = self.params
        h = (np.stack([encode(a, self._scale) for a in archs]) - np.asarray(p["x_mean"])) / np.asarray(p["x_std"])
        layers = list(zip(p["weights"], p["biases"], strict=True))
        for k, (w, b) in enumerate(layers):
            h = h @ np.asarray(w) + np.asarray(b)
            if k < len(layers) - 1:
                h = np.maximum(h, 0.0)
        return np.asarray(h[:, 0] * p["y_std"] + p["y_mean"])

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.params, **(extra or {})}) + "\n")
        return path

    @classmethod
    def load(cls, path: Path, space: SearchSpace) -> AccuracyPredictor:
        try:
            params = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SupernetError(f"{path}: cannot read the accuracy predictor ({exc})") from None
        if params.get("format") != FORMAT or params.get("space") != space.name:
            raise SupernetError(f"{path}: not an accuracy predictor for space {space.name}")
        return cls(space, params)
