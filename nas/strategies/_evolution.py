"""Regularized (aging) evolution (Real et al., 2019) as an Optuna sampler.

The population is the last ``population_size`` finished trials (aging: the oldest leave first); a child
is the best of ``tournament_size`` random members with exactly one active choice mutated. All state
lives in the study, so it resumes from RDB storage like any Optuna sampler.

Pruned trials are members too, with the value they were pruned at (the reward so far): with a pruner
stopping about 70% of candidates, a population of complete trials alone never formed within the
budget, and the sampler stayed random (seen in benchmarks/search_vs_reference.py).
"""

from __future__ import annotations

import random
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from nas.spaces import SearchSpace


class RegularizedEvolutionSampler(optuna.samplers.BaseSampler):
    def __init__(self, space: SearchSpace, population_size: int = 16, tournament_size: int = 4,
                 seed: int | None = None) -> None:
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"tournament_size must be in [1, {population_size}], got {tournament_size}")
        self._space = space
        self._population = population_size
        self._tournament = tournament_size
        self._rng = random.Random(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        """Fresh randomness (a resumed search, see ``run_search``)."""
        self._rng = random.Random()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {name: CategoricalDistribution(options) for name, options in self._space.dimensions().items()}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if len(study.directions) != 1:
            raise ValueError("regularized evolution optimises one objective; use nsga2 for Pareto search")
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                if set(search_space) <= set(t.params) and t.value is not None]
        if len(done) < self._population:
            return {}
        population = sorted(done, key=lambda t: t.number)[-self._population:]
        contenders = self._rng.sample(population, self._tournament)
        sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
        parent = max(contenders, key=lambda t: sign * float(t.value or 0.0))
        child = self._space.mutate({k: parent.params[k] for k in search_space}, self._rng)
        trial_attrs = {"parent_trial": parent.number}
        study._storage.set_trial_system_attr(trial._trial_id, "evolution", trial_attrs)
        return child

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)
