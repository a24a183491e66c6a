"""Proxy datasets: small, in-memory, deterministically split (digits by default, CIFAR-10, ImageFolder).

Importing this package does not import torch; ``load_dataset`` does.
"""

from __future__ import annotations

from nas.data._load import load_dataset
from nas.data._spec import DatasetKind, DatasetSpec, ProxyData, check_under_data_dirs
from nas.data._split import stratified_split, stratified_subset

__all__ = ["DatasetKind", "DatasetSpec", "ProxyData", "check_under_data_dirs", "load_dataset", "stratified_split",
           "stratified_subset"]
