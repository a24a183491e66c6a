"""Platform-aware latency: device profiles, on-device measurement and per-device lookup-table prediction.

Importing this package is cheap (no torch, no onnxruntime): those load in the measuring subprocess,
and prediction never needs them.
"""

from __future__ import annotations

from nas.latency._cache import latest_median as cached_median
from nas.latency._calibration import Calibration, fit_calibration, fit_ratio
from nas.latency._fingerprint import fingerprint, fingerprint_info, hardware_info
from nas.latency._lut import (
    CALIBRATION_SEED,
    TableReport,
    build_table,
    calibrate,
    calibration_networks,
    ensure_entries,
    enumerate_parts,
)
from nas.latency._measure import Measurement, check_runnable, measure, measure_many
from nas.latency._parts import Part, network_keys, network_parts
from nas.latency._predict import LatencyPredictor
from nas.latency._profiles import BUILT_IN, DeviceProfile, list_profiles, load_profile
from nas.latency._refit import Refit, refit_calibration
from nas.latency._runtimes import (
    OrtRuntime,
    Runtime,
    TorchEagerRuntime,
    register_runtime,
    runtime_names,
    runtime_unavailable_reason,
)
from nas.latency._timing import TABLE_TIMING, LatencyStats, TimingSettings, time_callable, time_interleaved

__all__ = [
    "BUILT_IN",
    "CALIBRATION_SEED",
    "TABLE_TIMING",
    "Calibration",
    "DeviceProfile",
    "LatencyPredictor",
    "LatencyStats",
    "Measurement",
    "OrtRuntime",
    "Part",
    "Refit",
    "Runtime",
    "TableReport",
    "TimingSettings",
    "TorchEagerRuntime",
    "build_table",
    "cached_median",
    "calibrate",
    "calibration_networks",
    "check_runnable",
    "ensure_entries",
    "enumerate_parts",
    "fingerprint",
    "fingerprint_info",
    "fit_calibration",
    "fit_ratio",
    "hardware_info",
    "list_profiles",
    "load_profile",
    "measure",
    "measure_many",
    "network_keys",
    "network_parts",
    "refit_calibration",
    "register_runtime",
    "runtime_names",
    "runtime_unavailable_reason",
    "time_callable",
    "time_interleaved",
]
