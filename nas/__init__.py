"""Platform-aware neural architecture search: library core.

Heavy dependencies (torch, onnxruntime, optuna) are imported lazily inside the modules that need them,
so importing ``nas`` (as the API does) stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
