"""A search trial evaluated one-shot: what ``proxy.supernet`` in a search spec turns training into.

The candidate is extracted from the supernet, its BN statistics re-estimated on the supernet's own
training images, and it is validated on the supernet's own validation split (held out from the
supernet's training, whatever the search's dataset says; the class counts must agree). The extracted,
recalibrated network is saved as the trial's checkpoint, so the search's winner is exported (state file,
ONNX) as with trained trials, and ``nas train --supernet ... --inherit`` can train it further.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.search._evaluate import TrainOutcome, TrainRequest

log = logging.getLogger(__name__)


@lru_cache(maxsize=2)
def _loaded(path: str, mtime_ns: int, calibration: int, seed: int) -> tuple[Any, Any, Any, Any]:
    from nas.supernet._oneshot import oneshot_data
    from nas.supernet._store import load_supernet

    loaded = load_supernet(path)
    return (loaded, *oneshot_data(loaded, calibration, seed))


def oneshot_trial(req: TrainRequest) -> TrainOutcome:
    import torch

    from nas.arch import parse_architecture
    from nas.export import state_bytes
    from nas.proxies._train import seeded
    from nas.search._evaluate import TrainOutcome
    from nas.service.artifacts import put_artifact
    from nas.service.supernet_files import resolve_supernet
    from nas.supernet._oneshot import evaluate_subnet

    assert req.supernet is not None
    path = resolve_supernet(req.storage_url, req.supernet)  # the service's supernet of that name, else local
    loaded, calib_x, val_x, val_y = _loaded(str(path), path.stat().st_mtime_ns, req.recipe.bn_recalibration or 512,
                                            req.recipe.seed)
    arch = parse_architecture(req.architecture)
    with seeded(req.recipe.seed, req.recipe.threads), torch.no_grad():
        result, net = evaluate_subnet(loaded.net, arch, calib_x, val_x, val_y, return_model=True)
    checkpoint = None
    if req.save_checkpoint:
        from nas.builder import build_model

        static = build_model(arch)
        static.load_state_dict(net.state_dict())
        content = state_bytes(arch, model=static, provenance={
            "trial": req.trial_number, "study": req.study_name, "weights": "inherited from a supernet (one-shot)",
            "supernet": str(path), "supernet_fingerprint": loaded.meta.get("fingerprint")})
        put_artifact(req.storage_url, req.study_name, req.save_checkpoint, content)
        checkpoint = req.save_checkpoint
    log.info("trial %d (%s): one-shot accuracy %.4f in %.2f s", req.trial_number, arch.hash, result.accuracy,
             result.seconds)
    return TrainOutcome(accuracy=result.accuracy, val_accuracy=[result.accuracy], epochs_run=0, pruned=False,
                        diverged=False, train_seconds=result.seconds, device="cpu",
                        inherited=len(net.state_dict()), checkpoint=checkpoint)
