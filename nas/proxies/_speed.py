"""An exact speed-up for proxy training at small resolutions: crop depthwise kernels to the feature map.

At 32x32 the last stages of a MobileNet run on 1x1 or 2x2 maps, where a ``k x k`` depthwise conv with
``k // 2`` zero padding only ever multiplies its central ``(2h - 1) x (2w - 1)`` taps with data (the rest
meet padding). oneDNN handles that case very slowly on CPU (a 5x5 depthwise conv on a 1x1 map costs
tens of milliseconds per batch); convolving with the cropped central kernel gives identical outputs and
identical gradients (the outer taps' gradient is zero either way) in a fraction of the time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    import torch


class CroppedDepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose forward drops kernel taps that can only see padding; same parameters."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None) -> torch.Tensor:
        pad = self.kernel_size[0] // 2
        reach = min(pad, max(input.shape[-2], input.shape[-1]) - 1)
        if reach >= pad:
            return super()._conv_forward(input, weight, bias)
        centre = weight[:, :, pad - reach:pad + reach + 1, pad - reach:pad + reach + 1].contiguous()
        return F.conv2d(input, centre, bias, self.stride, reach, self.dilation, self.groups)


def crop_depthwise_kernels(model: nn.Module) -> int:
    """Switch eligible depthwise convs (square odd kernel > 1, 'same' zero padding, no dilation) to
    :class:`CroppedDepthwiseConv2d` in place; the state dict is unchanged. Returns how many."""
    count = 0
    for m in model.modules():
        if type(m) is not nn.Conv2d:
            continue
        k = m.kernel_size
        if (m.groups > 1 and m.groups == m.in_channels and k[0] == k[1] and k[0] > 1 and k[0] % 2 == 1
                and m.padding == (k[0] // 2, k[0] // 2) and m.dilation == (1, 1) and m.padding_mode == "zeros"):
            m.__class__ = CroppedDepthwiseConv2d
            count += 1
    return count
