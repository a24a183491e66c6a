"""``import openvino`` without its usage telemetry, unless the user opted in.

Without a consent file OpenVINO counts as consent: its import and every ``convert_model`` send usage
events, each from a new Python process that it waits up to 3 s for (``openvino_telemetry``'s GA4
backend). Seen here, on a machine with no route out: several such processes per network converted, each
re-importing this package, and a ShuffleNet's conversion taking about 2.5 s instead of 1.3 s. So they are
off unless ``~/intel/openvino_telemetry`` says ``1`` (``opt_in_out --opt_in``, OpenVINO's own switch);
OpenVINO's converter then uses its own no-op stub.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType


def opted_in() -> bool:
    """The user's own answer to OpenVINO's telemetry question, if they gave one: ``1`` is yes."""
    try:
        return (Path.home() / "intel" / "openvino_telemetry").read_text().strip() == "1"
    except (OSError, RuntimeError):  # no file, or no home directory
        return False


def import_openvino() -> ModuleType:
    """The ``openvino`` module; call it instead of ``import openvino`` (the first import decides)."""
    if "openvino" not in sys.modules and not opted_in():
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # import fails -> stub
    import openvino

    return openvino
