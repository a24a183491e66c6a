"""The accuracy predictor: a fixed-length encoding of any member of a space, a regressor that ranks unseen
architectures, and a JSON round trip that predicts the same numbers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from scipy.stats import kendalltau

from nas.errors import SupernetError
from nas.spaces import load_space
from nas.supernet import AccuracyPredictor, encode
from nas.supernet._predictor import _scale


def _target(arch) -> float:  # type: ignore[no-untyped-def]
    """A smooth stand-in for accuracy: more depth, width and SE help, with diminishing returns."""
    blocks = [b for _, _, b in arch.blocks()]
    return 0.5 + 0.4 * (1 - 1 / (1 + sum(b.mid for b in blocks) / 2000)) + 0.01 * sum(b.se for b in blocks)


def test_every_member_encodes_to_the_same_length_whatever_its_depth() -> None:
    space = load_space("mobilenetv3-small")
    scale = _scale(space)
    rng = random.Random(0)
    lengths = {len(encode(space.sample(rng=rng, num_classes=10), scale)) for _ in range(30)}
    assert len(lengths) == 1


def test_the_predictor_ranks_unseen_architectures_and_survives_a_json_round_trip(tmp_path: Path) -> None:
    space = load_space("mobilenetv3-small")
    rng = random.Random(1)
    archs = [space.sample(rng=rng, num_classes=10) for _ in range(160)]
    accs = [_target(a) for a in archs]
    fitted = AccuracyPredictor.fit(space, archs[:120], accs[:120])
    predicted = fitted.predict(archs[120:])
    assert kendalltau(predicted, accs[120:]).statistic > 0.6
    loaded = AccuracyPredictor.load(fitted.save(tmp_path / "p.json"), space)
    assert (loaded.predict(archs[120:]) == predicted).all()
    with pytest.raises(SupernetError, match="not an accuracy predictor for space mobilenetv3-large"):
        AccuracyPredictor.load(tmp_path / "p.json", load_space("mobilenetv3-large"))


def test_too_few_samples_is_a_clear_error() -> None:
    space = load_space("mobilenetv3-small")
    with pytest.raises(SupernetError, match="at least 4"):
        AccuracyPredictor.fit(space, [space.sample(seed=0, num_classes=10)], [0.5])
