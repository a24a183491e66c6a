"""``nas supernet train SPEC``'s document: which space, which data, how to train. Validated without torch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nas._documents import SERVICE_RULES, first_error, read_yaml_mapping
from nas.data import DatasetSpec
from nas.errors import SpecError
from nas.proxies import TrainRecipe


class SandwichSpec(BaseModel):
    """Per step: the largest subnet (cross-entropy on the labels), the smallest and ``random`` random ones
    (distilled in place from the largest's detached outputs: ``alpha`` of KL at ``temperature``, the rest
    cross-entropy), gradients summed over all of them, then one optimizer step (BigNAS's sandwich rule).
    ``rule: uniform`` replaces all of it by ``random`` random subnets on the labels (SPOS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    random: int = Field(default=2, ge=0, le=16)
    alpha: float = Field(default=1.0, ge=0.0, le=1.0, description="KD weight for the non-largest subnets.")
    temperature: float = Field(default=1.0, gt=0.0, le=100.0)
    smallest_groups: Literal["most", "fewest"] = Field(default="most", description=(
        "The smallest subnet's 1x1 group counts: the most (its fewest MACs) or the fewest, dense, so that "
        "every extreme trains the dense weights (docs/supernet-measurements.md)."))
    rule: Literal["sandwich", "uniform"] = Field(default="sandwich", description=(
        "sandwich: the largest, the smallest and `random` random subnets, distilled from the largest; "
        "uniform: `random` random subnets alone, each on the labels (single-path one-shot, SPOS: every "
        "member equally likely, no extremes, no teacher)."))


class SupernetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="supernet", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    space: str = "mobilenetv3-small"
    dataset: DatasetSpec = DatasetSpec()
    recipe: TrainRecipe = TrainRecipe(epochs=30, lr=0.05)
    sandwich: SandwichSpec = SandwichSpec()
    largest_epochs: int = Field(default=0, ge=0, le=1000, description=(
        "Epochs that train the largest subnet alone before the sandwich starts; its expanded channels are "
        "then sorted by importance (once-for-all's order). Counted within recipe.epochs."))
    dense_epochs: int = Field(default=0, ge=0, le=1000, description=(
        "Epochs after largest_epochs that sample with every 1x1 group count at its fewest (dense), before "
        "group choices are sampled too: progressive shrinking over the group dimension. Counted within "
        "recipe.epochs."))
    group_weights: Literal["separate", "shared"] = Field(default="separate", description=(
        "separate: each 1x1 group count of a block has its own weights; shared: one set of weights serves "
        "every group count (grouped convs take the block diagonal of the dense weights)."))
    group_distill: float = Field(default=0.0, ge=0.0, le=100.0, description=(
        "Weight of feature-level distillation between a block's paths: every grouped 1x1 path of a trained "
        "subnet also learns to reproduce, on its own input, the output of the block's dense path (mean "
        "squared distance over the grouped blocks, added to the subnet's loss). It keeps every path's output "
        "in one channel basis, so subnets drawing a group count per block inherit usable weights "
        "(docs/supernet-measurements.md); 0: off."))
    eval_every: int = Field(default=1, ge=0, le=1000, description="Validate largest/smallest every N epochs; 0: end.")

    @property
    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed (name and evaluation cadence left out)."""
        body = self.model_dump(mode="json", exclude={"name", "eval_every"})
        for part, key, default in (("sandwich", "smallest_groups", "most"), ("sandwich", "rule", "sandwich"),
                                   (None, "dense_epochs", 0), (None, "group_distill", 0.0)):
            holder = body[part] if part else body
            if holder[key] == default:  # defaults: fingerprints from before the option existed still match
                del holder[key]
        body["recipe"] = self.recipe.fingerprint
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def parse_supernet_spec(data: object, source: str = "<inline>", *, local_files: bool = True) -> SupernetSpec:
    """``local_files`` False: the service's rules (dataset paths only under ``NAS_DATA_DIRS``)."""
    if not isinstance(data, dict):
        raise SpecError(source, "(document)", "a supernet spec must be a mapping")
    try:
        spec = SupernetSpec.model_validate(data, context=None if local_files else SERVICE_RULES)
    except ValidationError as exc:
        raise SpecError(source, *first_error(exc)) from None
    if spec.largest_epochs >= spec.recipe.epochs and spec.largest_epochs:
        raise SpecError(source, "largest_epochs", f"{spec.largest_epochs} must be below recipe.epochs "
                                                  f"({spec.recipe.epochs}); the CLI's --largest-epochs overrides it")
    if spec.sandwich.rule == "uniform" and not spec.sandwich.random:
        raise SpecError(source, "sandwich.random", "the uniform rule trains only random subnets: at least 1")
    if spec.dense_epochs and spec.largest_epochs + spec.dense_epochs >= spec.recipe.epochs:
        raise SpecError(source, "dense_epochs", f"largest_epochs + dense_epochs must be below recipe.epochs "
                                                f"({spec.recipe.epochs})")
    return spec


def with_overrides(data: dict[str, Any], *, name: str | None = None, epochs: int | None = None,
                   largest_epochs: int | None = None) -> dict[str, Any]:
    """A spec document with the command line's overrides, validated afterwards like the file itself."""
    data = dict(data)
    if name is not None:
        data["name"] = name
    if epochs is not None:
        data["recipe"] = {**(data.get("recipe") or {}), "epochs": epochs}
    if largest_epochs is not None:
        data["largest_epochs"] = largest_epochs
    return data


def read_supernet_document(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    data: dict[str, Any] = read_yaml_mapping(p, lambda f, r: SpecError(str(p), f, r), "a supernet spec")
    return data


def load_supernet_spec(path: str | Path, **overrides: Any) -> SupernetSpec:
    """The spec file, with ``with_overrides``' options applied before it is validated."""
    return parse_supernet_spec(with_overrides(read_supernet_document(path), **overrides), str(path))
