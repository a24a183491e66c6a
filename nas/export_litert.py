"""PyTorch -> LiteRT (``.tflite``) with ``litert-torch``: float32, or full-integer int8 by post-training
quantization (PT2E, symmetric per-channel weights, static activations calibrated on real inputs).

The model takes NHWC input (``[N, R, R, 3]``, as a phone's camera or bitmap gives it), so no layout
transpose is timed that a deployment would not run. The int8 model's input and output are int8 too
(full integer: what an integer-only accelerator or XNNPACK's QS8 path runs); their scale and zero point
are in the file's tensor details.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture
from nas.errors import ExportError

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """litert-torch prints its progress on stdout, which is a JSON channel in the measuring process."""
    for name in ("absl", "torch._export", "torch.export", "torchao"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def convert_module(module: Any, sample: torch.Tensor, path: Path,
                   calibration: list[torch.Tensor] | None = None) -> Path:
    """Write the ``.tflite`` of an NCHW ``module`` taking NHWC input like ``sample`` (``[N, C, H, W]``,
    permuted); int8 when ``calibration`` (NCHW batches shaped like ``sample``) is given."""
    import torch

    with _quiet():
        import litert_torch

        wrapped = litert_torch.to_channel_last_io(module.eval(), args=[0]).eval()
        nhwc = sample.permute(0, 2, 3, 1).contiguous()
        if calibration is None:
            edge = litert_torch.convert(wrapped, (nhwc,))
        else:
            from litert_torch.quantize import pt2e_quantizer
            from litert_torch.quantize.quant_config import QuantConfig
            from torchao.quantization.pt2e import quantize_pt2e

            quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
                pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
            graph = torch.export.export(wrapped, (nhwc,)).module()
            prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
            with torch.no_grad():
                for batch in calibration:
                    prepared(batch.permute(0, 2, 3, 1).contiguous())
            converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
            edge = litert_torch.convert(converted, (nhwc,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
        edge.export(str(path))
    return path


def export_tflite(arch: Architecture, path: Path, *, model: Any = None,
                  calibration: list[torch.Tensor] | None = None, batch: int = 1) -> Path:
    """Write ``arch`` (or a trained ``model`` of it) as ``.tflite`` with input ``[batch, R, R, 3]``."""
    import torch

    from nas.builder import build_model

    module = model if model is not None else build_model(arch)
    sample = torch.randn(batch, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))
    try:
        return convert_module(module, sample, path, calibration)
    except Exception as exc:  # the converter raises many unrelated types
        raise ExportError(f"LiteRT conversion of {arch.hash} failed: {type(exc).__name__}: {exc}") from exc
