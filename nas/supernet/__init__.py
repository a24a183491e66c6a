"""Weight sharing: one supernet per mbconv space, subnets extracted as static networks with their weights.

Importing this package imports torch (the supernet is a module); the CLI and the search import it lazily.
"""

from __future__ import annotations

from nas.supernet._extract import extract
from nas.supernet._layers import bn_settings
from nas.supernet._model import SuperBlock, Supernet
from nas.supernet._sampling import extreme_choices, largest_architecture, sandwich, smallest_architecture
from nas.supernet._sort import sort_channels

__all__ = [
    "SuperBlock",
    "Supernet",
    "bn_settings",
    "extract",
    "extreme_choices",
    "largest_architecture",
    "sandwich",
    "smallest_architecture",
    "sort_channels",
]
