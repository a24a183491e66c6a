"""Canonical architecture documents: model, hash, string form, loading from files and names."""

from __future__ import annotations

from nas.arch._io import (
    ArchitectureRef,
    architecture_field,
    load_architecture,
    reference_names,
    resolve_architecture,
    save_architecture,
)
from nas.arch._model import (
    PYTORCH_BATCHNORM,
    SCHEMA_VERSION,
    Activation,
    Architecture,
    BatchNorm,
    Block,
    BlockType,
    Head,
    Stem,
    parse_architecture,
)
from nas.arch._string import from_string, to_string

__all__ = [
    "PYTORCH_BATCHNORM",
    "SCHEMA_VERSION",
    "Activation",
    "Architecture",
    "ArchitectureRef",
    "BatchNorm",
    "Block",
    "BlockType",
    "Head",
    "Stem",
    "architecture_field",
    "from_string",
    "load_architecture",
    "parse_architecture",
    "reference_names",
    "resolve_architecture",
    "save_architecture",
    "to_string",
]
