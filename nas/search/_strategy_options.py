"""What each strategy accepts in ``strategy.options``, checked when the spec is parsed.

Strategies read their options from the plain mapping (with their own budget-dependent defaults); these
models only refuse unknown keys, wrong types and absurd values at submission, so a bad option is a 422
naming ``strategy.options.<key>`` instead of a worker failing minutes later.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class RandomOptions(_Options):
    pass


class TPEOptions(_Options):
    n_startup_trials: int = Field(default=10, ge=0, le=100_000)


class NSGA2Options(_Options):
    population_size: int = Field(default=20, ge=2, le=100_000)


class EvolutionOptions(_Options):
    population_size: int = Field(default=20, ge=2, le=100_000)
    tournament_size: int = Field(default=5, ge=1, le=100_000)


class NetAdaptOptions(_Options):
    seed: str = Field(min_length=1, description="Starting network: a reference name, file or string form.")
    seed_weights: str | None = Field(default=None, min_length=1,
                                     description="State file of the seed network (nas arch import-weights) to "
                                                 "start from instead of training the seed from scratch.")
    step: float = Field(default=0.02, gt=0, lt=1, description="Latency cut per iteration, as a share of L0.")
    decay: float = Field(default=0.96, gt=0, le=1)
    finetune_epochs: int = Field(default=1, ge=0, le=1000)
    final_epochs: int | None = Field(default=None, ge=0, le=1000)
    selection: Literal["accuracy_per_ms", "accuracy"] = "accuracy_per_ms"
    max_proposals: int = Field(default=8, ge=1, le=1000)


OPTIONS: dict[str, type[_Options]] = {
    "random": RandomOptions, "tpe": TPEOptions, "nsga2": NSGA2Options, "evolution": EvolutionOptions,
    "netadapt": NetAdaptOptions,
}
