"""Declarative search spaces: schema, loading, decoding choices, sampling, mutation and membership."""

from __future__ import annotations

from nas.spaces._loader import check_member, list_spaces, load_space, parse_space
from nas.spaces._membership import membership_problems
from nas.spaces._schema import SpaceDefinition
from nas.spaces._space import Choices, SearchSpace

__all__ = [
    "Choices",
    "SearchSpace",
    "SpaceDefinition",
    "check_member",
    "list_spaces",
    "load_space",
    "membership_problems",
    "parse_space",
]
