"""The sandwich rule's subnets: the largest, the smallest and random members of a space, as choices.

"Largest" takes every numeric choice at its maximum, SE on and dense (1-group) 1x1 convs; "smallest" the
minimum, SE off and the most groups. Activation has no order: the largest uses hswish where allowed
(MobileNetV3's choice for its wide layers), the smallest relu.
"""

from __future__ import annotations

import random
from typing import Any

from nas.arch import Architecture
from nas.spaces import Choices, SearchSpace

_LARGEST_ACT = ["hswish", "relu6", "relu"]
_SMALLEST_ACT = ["relu", "relu6", "hswish"]


def _pick(name: str, options: list[Any], largest: bool, dense_smallest: bool = False) -> Any:
    key = name.rsplit(".", 1)[-1]
    if key == "activation":
        order = _LARGEST_ACT if largest else _SMALLEST_ACT
        return min(options, key=lambda a: order.index(a) if a in order else len(order))
    if key == "se":
        return (True in options) if largest else (False not in options)
    if key == "groups":
        return min(options) if largest or dense_smallest else max(options)
    if key == "block":
        return options[0]
    numeric = [o for o in options if o is not None]
    if not numeric:
        return None
    if key == "channels" and None in options and not largest:
        return None
    return max(numeric) if largest else min(numeric)


def extreme_choices(space: SearchSpace, largest: bool, dense_smallest: bool = False) -> Choices:
    """Every choice at its largest or smallest; ``dense_smallest``: the smallest keeps 1x1 convs dense."""
    return {name: _pick(name, options, largest, dense_smallest) for name, options in space.dimensions().items()}


def largest_architecture(space: SearchSpace, num_classes: int) -> Architecture:
    return space.decode(extreme_choices(space, True), num_classes=num_classes)


def smallest_architecture(space: SearchSpace, num_classes: int, dense: bool = False) -> Architecture:
    return space.decode(extreme_choices(space, False, dense), num_classes=num_classes)


def random_member(space: SearchSpace, num_classes: int, rng: random.Random, dense: bool = False) -> Architecture:
    """A uniformly random member (``space.sample``'s draw); ``dense``: every 1x1 group count at its fewest."""
    choices = space.sample_choices(rng)
    if dense:
        choices |= {name: min(options) for name, options in space.dimensions().items() if name.endswith(".groups")}
    return space.decode(choices, num_classes=num_classes)


def sandwich(space: SearchSpace, num_classes: int, rng: random.Random, n_random: int,
             dense_smallest: bool = False, dense: bool = False) -> list[Architecture]:
    """[largest, smallest, n_random random subnets]: one training step's networks (BigNAS's sandwich rule);
    ``dense``: the smallest and the random subnets keep every 1x1 conv dense (progressive shrinking)."""
    nets = [largest_architecture(space, num_classes),
            smallest_architecture(space, num_classes, dense_smallest or dense)]
    return nets + [random_member(space, num_classes, rng, dense) for _ in range(n_random)]


def uniform(space: SearchSpace, num_classes: int, rng: random.Random, n: int,
            dense: bool = False) -> list[Architecture]:
    """``n`` random members and no extremes: one step of single-path one-shot training (SPOS)."""
    return [random_member(space, num_classes, rng, dense) for _ in range(n)]
