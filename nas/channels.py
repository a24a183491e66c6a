"""Channel-width rules shared by the builder, the cost model and the spaces (no torch here)."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never more than 10% below ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def se_channels(mid: int) -> int:
    """Squeeze width of the SE module (torchvision MobileNetV3: make_divisible(mid // 4, 8))."""
    return make_divisible(mid // 4, 8)
