"""Where supernets live and how they are read back: ``NAS_HOME/supernets/NAME/supernet.pt`` or any file.

The file holds the space definition (not just its name), so a supernet stays loadable when the shipped
space file changes, plus the spec, the dataset label and the training history for provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import NotFoundError, SupernetError

if TYPE_CHECKING:
    from nas.supernet._model import Supernet

FORMAT = "nas-supernet/3"
# Version 1 took a grouped conv's channels by position (``_groups``), version 2 the expanded channels of a
# ragged shuffle (expansion 3 with 4 groups at some widths) by sub-position; their files load only where
# that is the same thing: spaces without group choices.
_DENSE_ONLY = ("nas-supernet/1", "nas-supernet/2")


def supernets_dir() -> Path:
    from nas.settings import get_settings

    return get_settings().home / "supernets"


def run_dir(name: str) -> Path:
    return supernets_dir() / name


def resolve(name_or_path: str) -> Path:
    """A file path, or the name of a supernet trained into ``NAS_HOME/supernets``."""
    path = Path(name_or_path)
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise NotFoundError("supernet file", str(path))
        return path
    named = run_dir(name_or_path) / "supernet.pt"
    if named.is_file():
        return named
    known = sorted(p.parent.name for p in supernets_dir().glob("*/supernet.pt")) if supernets_dir().is_dir() else []
    raise NotFoundError("supernet", name_or_path, known)


@dataclass(eq=False)
class LoadedSupernet:
    net: Supernet
    meta: dict[str, Any]
    path: Path


def save_supernet(net: Supernet, path: Path, meta: dict[str, Any]) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": FORMAT, "space": net.space.definition.model_dump(mode="json"),
                "num_classes": net.num_classes, "state_dict": net.state_dict(), "meta": meta}, tmp)
    tmp.replace(path)
    return path


def load_supernet(name_or_path: str) -> LoadedSupernet:
    import torch

    from nas.spaces import parse_space
    from nas.supernet._model import Supernet

    path = resolve(name_or_path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") not in (FORMAT, *_DENSE_ONLY):
        raise SupernetError(f"{path}: not a supernet file (expected format {FORMAT})")
    shared = any(".paths.shared." in key for key in blob["state_dict"])  # the design is in the weights' names
    net = Supernet(parse_space(blob["space"], str(path)), int(blob["num_classes"]), shared_groups=shared)
    if blob["format"] in _DENSE_ONLY and any(g > 1 for g in net.layout):
        raise SupernetError(f"{path}: trained before grouped convs kept their channels across widths and "
                            f"expansions ({blob['format']}); its space has group choices, so train it again")
    net.load_state_dict(blob["state_dict"])
    return LoadedSupernet(net.eval(), dict(blob.get("meta", {})), path)
