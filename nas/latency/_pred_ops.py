"""Per-operator predictor: per-operator costs fitted on whole networks measured on the device.

For runtimes whose parts cannot be produced fast enough for a lookup table (LiteRT: litert-torch takes
10-15 s per conversion, so 2,843 parts would take hours) and for devices that only time whole networks
(remote ones). A network is described by what its operators do, counted analytically from the
architecture: MACs of dense, grouped and depthwise convolutions (per kernel size), elements read and
written by convolutions, activations, SE, residual adds and data movement (shuffles, concats, pools),
the operator count (per-op dispatch cost), the weight count (streaming them) and one call. The device's
cost of each is fitted by non-negative least squares on relative error over networks of the space
measured on the device (``build``: the calibration networks, spanning the weight range; every network
measured later on the device joins the fit, so it grows more accurate as a search measures). Nothing is
stored but the measurements themselves (``_cache``): the fit is made when the predictor loads, in
milliseconds. Prediction is a loop over ~20 blocks: tens of microseconds, no torch.

A runtime whose kernels have costs the shared features miss names more (``Runtime.ops_features``, from
``RUNTIME_FEATURES``), so adding one never changes the fits of devices already validated: ONNX Runtime int8
runs ShuffleNet V1's average-pool shortcut as QLinearAveragePool (several times a copy's cost per element),
its int8 GEMMs take a slow path when a group's channels are not multiples of 4, and its int8 depthwise
convolutions cost as if their channels were rounded up to a multiple of 16, and two to three times as much
per MAC again when they are not a multiple of 16 (per-node profiles, docs/latency.md). LiteRT int8 runs
most hard-swishes as int8 HARD_SWISH at about ten times the per-element cost of the few it leaves in float
(``_Counts.float_hswish``), so it fits the two apart instead of one ``hswish_elems``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.arch import Activation, Architecture, Block, BlockType
from nas.errors import LatencyError
from nas.latency._calibration import ANY_SPACE

if TYPE_CHECKING:
    from nas.latency._profiles import DeviceProfile
    from nas.spaces import SearchSpace

log = logging.getLogger(__name__)

FEATURES = ("call", "ops", "dense_macs", "pw_macs", "pw_small_macs", "gpw2_macs", "gpw3_macs", "gpw4_macs",
            "gpw8_macs", "group_calls", "pw_elems", "dw3_macs", "dw5_macs", "dw7_macs", "dw_elems", "hswish_elems",
            "relu_elems", "se_elems", "add_elems", "move_elems", "fc_macs", "weights", "macs_x_weights")
RUNTIME_FEATURES = ("avgpool_elems", "unaligned_macs", "unaligned_elems", "dw_pad_macs", "dw_unaligned_macs",
                    "int8_hswish_elems", "float_hswish_elems")
# Runtime features that divide a shared one between them: a runtime naming them is not fitted the shared one.
SPLITS = {"int8_hswish_elems": "hswish_elems", "float_hswish_elems": "hswish_elems"}
ALIGN = 4  # channels per group int8 GEMM kernels take at once (VNNI's dot product: 4 bytes); fitted best
DW_BLOCK = 16  # channels an int8 depthwise kernel does at once; a partial block costs a whole (best of 8/16/32)
SMALL_MAP = 14  # 1x1 convs on maps this small or smaller run at another MAC rate (less work per weight)
# Networks measured per space and resolution to fit ~17 costs: 24 left the grouped/ shuffle costs of
# ShuffleNet poorly identified in a trial fit; 40 fit in the 30-minute budget for LiteRT (about 20 s a network).
NETWORKS = 40
MIN_NETWORKS = 8


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class _Counts:
    """Feature counts of one network, accumulated layer by layer (shapes tracked as channels, size)."""

    def __init__(self) -> None:
        self.f = dict.fromkeys(FEATURES + RUNTIME_FEATURES, 0.0)
        self.f["call"] = 1.0

    def conv(self, cin: int, cout: int, size: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             act: Activation | None = None) -> int:
        out = _conv_out(size, kernel, stride)
        macs = kernel * kernel * (cin // groups) * cout * out * out
        f = self.f
        f["ops"] += 1
        f["weights"] += kernel * kernel * (cin // groups) * cout
        elems = cin * size * size + cout * out * out
        depthwise = groups == cin and groups > 1
        if not depthwise and size > 1 and ((cin // groups) % ALIGN or (cout // groups) % ALIGN):
            f["unaligned_macs"] += macs
            f["unaligned_elems"] += elems
        if depthwise:
            f[f"dw{kernel}_macs"] += macs
            f["dw_pad_macs"] += kernel * kernel * (-cin % DW_BLOCK) * out * out
            if cin % DW_BLOCK:
                f["dw_unaligned_macs"] += macs
            f["dw_elems"] += elems
        elif size == 1:
            f["fc_macs"] += macs
        elif kernel > 1:
            f["dense_macs"] += macs
        elif groups > 1:
            f[f"gpw{groups}_macs"] += macs
            f["group_calls"] += groups * out * out  # one small GEMM per group, each over the whole map
            f["pw_elems"] += elems
        else:
            f["pw_small_macs" if size <= SMALL_MAP else "pw_macs"] += macs
            f["pw_elems"] += elems
        if act is not None:
            self.act(act, cout * out * out)
        return out

    def act(self, act: Activation, elems: int) -> None:
        if act is Activation.hswish:
            self.f["ops"] += 1
            self.f["hswish_elems"] += elems
        else:
            self.f["relu_elems"] += elems

    def float_hswish(self, act: Activation, elems: int) -> None:
        """An activation where, if it is a hard-swish, LiteRT int8 runs it in float (dequantize, hard-swish,
        quantize): one feeding an average pool (SE's squeeze, the head's global pool) or following ShuffleNet
        V1's residual add. litert-torch's PT2E quantizer annotates no hard-swish; the converter makes the
        others int8 (read off the converted files' operators, 2026-11-30)."""
        if act is Activation.hswish:
            self.f["float_hswish_elems"] += elems

    def move(self, elems: int, ops: int = 1) -> None:
        self.f["ops"] += ops
        self.f["move_elems"] += elems

    def se(self, channels: int, size: int, squeeze: int) -> None:
        elems = channels * size * size
        self.f["ops"] += 3  # pool, gate, multiply (the two 1x1 convs counted as convs)
        self.f["se_elems"] += 2 * elems
        self.conv(channels, squeeze, 1)
        self.conv(squeeze, channels, 1)


def _block(c: _Counts, cin: int, size: int, b: Block) -> int:
    from nas.channels import se_channels

    if b.type is BlockType.mbconv:
        if b.mid != cin:
            c.conv(cin, b.mid, size, groups=b.groups if b.group_first_conv else 1, act=b.activation)
            if b.groups > 1:
                c.move(b.mid * size * size, 2)
        out = c.conv(b.mid, b.mid, size, b.kernel, b.stride, b.mid, b.activation)
        if b.se:
            c.se(b.mid, out, se_channels(b.mid))
            c.float_hswish(b.activation, b.mid * out * out)
        c.conv(b.mid, b.out, out, groups=b.groups)
        if b.stride == 1 and cin == b.out:
            c.f["ops"] += 1
            c.f["add_elems"] += b.out * out * out
        return out
    if b.type is BlockType.shufflev1:
        branch = b.out - cin if b.stride == 2 else b.out
        c.conv(cin, b.mid, size, groups=b.groups if b.group_first_conv else 1, act=b.activation)
        if b.groups > 1:
            c.move(b.mid * size * size, 2)
        out = c.conv(b.mid, b.mid, size, b.kernel, b.stride, b.mid)
        c.conv(b.mid, branch, out, groups=b.groups)
        if b.se:
            c.se(branch, out, se_channels(branch))
        if b.stride == 1:
            c.f["ops"] += 1
            c.f["add_elems"] += b.out * out * out
            c.float_hswish(b.activation, b.out * out * out)
        else:
            c.move(cin * size * size + b.out * out * out, 2)  # avg-pool shortcut, concat
            c.f["avgpool_elems"] += cin * size * size
        c.act(b.activation, b.out * out * out)
        return out
    half = b.out // 2
    if b.stride == 2:
        out = c.conv(cin, cin, size, b.kernel, 2, cin)
        c.conv(cin, half, out, act=b.activation)
        branch_in = cin
    else:
        branch_in = cin // 2
        c.move(cin * size * size)  # split
    c.conv(branch_in, b.mid, size, groups=b.groups if b.group_first_conv else 1, act=b.activation)
    if b.groups > 1:
        c.move(b.mid * size * size, 2)
    out = c.conv(b.mid, b.mid, size, b.kernel, b.stride, b.mid)
    c.conv(b.mid, half, out, groups=b.groups, act=b.activation)
    if b.se:
        c.se(half, out, se_channels(half))
        c.float_hswish(b.activation, half * out * out)
    c.move(2 * b.out * out * out, 3)  # concat, then the 2-group shuffle (reshape, transpose, reshape)
    return out


def features(arch: Architecture, resolution: int | None = None) -> dict[str, float]:
    """The network's operator counts (``FEATURES``) at ``resolution`` (default: its own)."""
    res = resolution or arch.resolution
    c = _Counts()
    st = arch.stem
    size = c.conv(3, st.channels, res, st.kernel, st.stride, act=st.activation)
    if st.pool:
        out = _conv_out(size, 3, 2)
        c.move(st.channels * (size * size + out * out))
        size = out
    for _, cin, b in arch.blocks():
        size = _block(c, cin, size, b)
    hd, width = arch.head, arch.last_channels
    if hd.channels:
        c.conv(width, hd.channels, size, act=hd.activation)
        width = hd.channels
        c.float_hswish(hd.activation, width * size * size)
    c.move(width * size * size)  # global pool
    if hd.hidden:
        c.conv(width, hd.hidden, 1, act=hd.activation)
        width = hd.hidden
    c.conv(width, arch.num_classes, 1)
    f = c.f
    f["int8_hswish_elems"] = f["hswish_elems"] - f["float_hswish_elems"]  # LiteRT int8's split of hswish_elems
    f["weights"] /= 1e6
    # A network whose weights crowd the caches slows every kernel a little (``_calibration``'s contention).
    f["macs_x_weights"] = sum(f[k] for k in FEATURES if k.endswith("_macs")) * f["weights"]
    return f


def feature_names(profile: DeviceProfile) -> tuple[str, ...]:
    """The features fitted for ``profile``: the shared ones and its runtime's own."""
    from nas.latency._runtimes import _REGISTRY

    extra = _REGISTRY[profile.runtime].ops_features
    unknown = set(extra) - set(RUNTIME_FEATURES)
    if unknown:
        raise LatencyError(f"runtime {profile.runtime} names unknown per-operator features {sorted(unknown)}; "
                           f"known: {', '.join(RUNTIME_FEATURES)}")
    replaced = {SPLITS[f] for f in extra if f in SPLITS}
    return tuple(f for f in FEATURES if f not in replaced) + tuple(extra)


@dataclass(frozen=True)
class OpsFit:
    """Per-feature costs (ms per unit) fitted for one space at one resolution, with its fit quality."""

    space: str
    resolution: int
    costs: dict[str, float]
    networks: int
    rms_rel: float  # root-mean-square relative error on the fitted networks

    def apply(self, feats: dict[str, float]) -> float:
        return sum(self.costs[k] * feats[k] for k in self.costs)


def fit(space: str, resolution: int, points: Sequence[tuple[dict[str, float], float]],
        names: Sequence[str] = FEATURES) -> OpsFit:
    """Non-negative costs of the features ``names`` minimising the relative error of ``points``
    (features, measured ms)."""
    import numpy as np
    from scipy.optimize import nnls

    if len(points) < MIN_NETWORKS:
        raise LatencyError(f"{len(points)} measured network(s) of {space} at {resolution}; the per-operator "
                           f"predictor needs at least {MIN_NETWORKS}")
    x = np.array([[p[0][k] for k in names] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    coef, _ = nnls((x / scale) / y[:, None], np.ones(len(y)))
    coef = coef / scale
    rel = (x @ coef - y) / y
    return OpsFit(space, resolution, {k: float(v) for k, v in zip(names, coef, strict=True) if v > 0},
                  len(points), float(math.sqrt(float((rel ** 2).mean()))))


class OpsPredictor:
    """Predicts from per-operator costs fitted on the device's measured networks (module docstring)."""

    approach = "ops"

    def __init__(self, profile: str, fingerprint: str, fits: Iterable[OpsFit]) -> None:
        self.profile, self.fingerprint = profile, fingerprint
        self._fits = {(f.space, f.resolution): f for f in fits}

    @property
    def fits(self) -> list[OpsFit]:
        return list(self._fits.values())

    def fit_for(self, arch: Architecture, resolution: int | None = None) -> OpsFit | None:
        """The fit of the network's space at this resolution, else the one over every space measured."""
        res = resolution or arch.resolution
        return self._fits.get((arch.space or ANY_SPACE, res)) or self._fits.get((ANY_SPACE, res))

    def missing(self, arch: Architecture, resolution: int | None = None) -> list[str]:
        """What must be measured before ``arch`` can be predicted: its space's fit at this resolution
        (a network without a space: any fit at this resolution)."""
        res = resolution or arch.resolution
        have = self._fits.get((arch.space or ANY_SPACE, res))
        return [] if have else [f"ops:{arch.space or ANY_SPACE}@{res}"]

    def predict(self, arch: Architecture, resolution: int | None = None) -> float:
        res = resolution or arch.resolution
        found = self.fit_for(arch, res)
        if found is None:
            raise LatencyError(
                f"no per-operator fit for space {arch.space} at resolution {res} on {self.profile}; build it "
                f"with `nas latency profile --device {self.profile} --space {arch.space or 'SPACE'} "
                f"--resolution {res}`")
        return found.apply(features(arch, res))

    @classmethod
    def from_database(cls, profile: str | DeviceProfile, *, database_url: str | None = None) -> OpsPredictor:
        from nas.arch import parse_architecture
        from nas.latency import _cache
        from nas.latency._fingerprint import fingerprint
        from nas.latency._measure import resolve_url
        from nas.latency._profiles import load_profile

        prof = load_profile(profile)
        url, fp = resolve_url(database_url), fingerprint(prof)
        groups: dict[tuple[str, int], list[tuple[dict[str, float], float]]] = {}
        for row in _cache.get_measurements(url, prof.name, fp):
            arch = parse_architecture(json.loads(row["architecture"]))
            if arch.space:
                groups.setdefault((arch.space, row["resolution"]), []).append(
                    (features(arch, row["resolution"]), row["median_ms"]))
        for (_, res), pts in list(groups.items()):
            groups.setdefault((ANY_SPACE, res), []).extend(pts)
        names = feature_names(prof)
        fits = [fit(space, res, pts, names) for (space, res), pts in groups.items() if len(pts) >= MIN_NETWORKS]
        return cls(prof.name, fp, fits)


def build(profile: str | DeviceProfile, space: str | SearchSpace, resolution: int, *,
          networks: int | None = None, database_url: str | None = None,
          progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Measure the space's calibration networks on the device (cached ones are reused) and fit."""
    from nas.latency._lut import calibration_networks
    from nas.latency._measure import measure_many, resolve_url
    from nas.spaces import load_space

    sp = load_space(space) if isinstance(space, str) else space
    url = resolve_url(database_url)
    archs = calibration_networks(sp, resolution, networks or NETWORKS)
    measure_many(archs, profile, resolution, database_url=url,
                 progress=(lambda d, n: progress("networks", d, n)) if progress else None)
    found = OpsPredictor.from_database(profile, database_url=url).fit_for(archs[0], resolution)
    assert found is not None  # the networks just measured are in the database
    return {"approach": "ops", "networks": found.networks, "rms_rel": round(found.rms_rel, 4),
            "costs": found.costs}
