"""Proxy datasets: digits by default, CIFAR-10 pickles and ImageFolder trees made here, splits, errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nas.data import DatasetSpec, load_dataset, stratified_split, stratified_subset
from nas.errors import DatasetError

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


# -- fixtures: tiny CIFAR-10 and ImageFolder trees ---------------------------------------------------
def cifar_batch(labels: list[int]) -> dict[bytes, object]:
    """Red plane = 20 * label, green and blue planes 0: the layout is then visible after loading."""
    data = np.zeros((len(labels), 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        data[i, 0] = 20 * label
    return {b"batch_label": b"test", b"labels": labels, b"data": data.reshape(len(labels), 3072),
            b"filenames": [b"x.png"] * len(labels)}


def write_pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for b, name in enumerate(CIFAR_BATCHES):
        write_pickle(root / name, cifar_batch([(b + i) % 10 for i in range(10)]))
    write_pickle(root / "test_batch", cifar_batch(list(range(10))))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_pickle(root / "batches.meta", {b"label_names": names, b"num_vis": 3072, b"num_cases_per_batch": 10})
    return root


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "flowers"
    modes = [("RGB", "png"), ("L", "png"), ("RGBA", "png"), ("RGB", "jpg"), ("RGB", "JPEG")]
    for c, name in enumerate(["tulip", "rose", "daisy"]):
        (root / name).mkdir(parents=True)
        for i, (mode, ext) in enumerate(modes):
            size = (20 + 7 * i, 30 - 3 * i)
            Image.new(mode, size, color=(40 * c,) * len(mode)).save(root / name / f"{i}.{ext}")
        (root / name / "notes.txt").write_text("not an image, ignored")
    return root


# -- digits -----------------------------------------------------------------------------------------
def test_digits_is_the_default_and_loads_all_1797_images_as_normalised_3_channel_tensors() -> None:
    data = load_dataset(DatasetSpec())
    assert (data.num_classes, data.name, data.class_names[:3]) == (10, "digits@32", ["0", "1", "2"])
    assert len(data.train_y) + len(data.val_y) == 1797
    assert data.train_x.shape == (len(data.train_y), 3, 32, 32) and data.train_x.dtype == torch.float32
    assert data.val_x.shape[1:] == (3, 32, 32) and data.train_y.dtype == torch.int64
    assert torch.equal(data.train_x[:, 0], data.train_x[:, 2])  # grey replicated to 3 channels
    assert data.train_x.mean().abs() < 1e-4 and (data.train_x.std() - 1).abs() < 1e-3


def test_digits_are_upsampled_to_the_requested_resolution() -> None:
    assert load_dataset(DatasetSpec(resolution=48, subset=50)).train_x.shape[-2:] == (48, 48)


def test_importing_the_data_package_does_not_import_torch() -> None:
    code = "import sys, nas.data, nas.proxies; sys.exit(int('torch' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- splits -----------------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_split_and_another_seed_a_different_one() -> None:
    a, b = load_dataset(DatasetSpec(seed=3)), load_dataset(DatasetSpec(seed=3))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    c = load_dataset(DatasetSpec(seed=4))
    assert not torch.equal(a.val_x, c.val_x)


def test_split_is_disjoint_covers_everything_and_is_stratified() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    train, val = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    assert np.bincount(labels[val]).tolist() == [10, 6, 3, 1]


def test_validation_fraction_sets_the_validation_size() -> None:
    data = load_dataset(DatasetSpec(val_fraction=0.5, subset=200))
    assert (len(data.train_y), len(data.val_y)) == (100, 100)
    in_subset = torch.cat([data.train_y, data.val_y]).bincount(minlength=10)
    assert torch.all((data.val_y.bincount(minlength=10) - in_subset / 2).abs() <= 1)


def test_subset_keeps_that_many_examples_with_the_class_proportions() -> None:
    labels = np.repeat(np.arange(3), [60, 30, 10])
    idx = stratified_subset(labels, 20, seed=1)
    assert len(set(idx.tolist())) == 20 and np.bincount(labels[idx]).tolist() == [12, 6, 2]
    assert np.array_equal(idx, stratified_subset(labels, 20, seed=1))


def test_a_subset_larger_than_the_source_is_an_error_naming_both_sizes() -> None:
    # the spec refuses this for digits (its size is known); the loader checks every source
    with pytest.raises(DatasetError, match="subset 5000 exceeds the 1797 examples"):
        load_dataset(DatasetSpec.model_construct(**{**DatasetSpec().model_dump(), "subset": 5000}))


@pytest.mark.parametrize("changes", [{"path": "/tmp"}, {"kind": "cifar10"}, {"val_fraction": 0.0},
                                     {"val_fraction": 1.0}, {"resolution": 4}, {"subset": 1}, {"subset": 1798}])
def test_invalid_specs_are_refused_before_any_loading(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DatasetSpec.model_validate(changes)


# -- CIFAR-10 ----------------------------------------------------------------------------------------
def test_cifar10_loads_the_five_training_batches_and_keeps_the_test_batch_out(cifar_dir: Path) -> None:
    data = load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir, val_fraction=0.2))
    assert len(data.train_y) + len(data.val_y) == 50
    assert data.num_classes == 10 and data.class_names[0] == "airplane" and data.class_names[-1] == "truck"
    assert data.train_x.shape[1:] == (3, 32, 32)


def test_cifar10_rows_are_decoded_as_red_green_blue_planes(cifar_dir: Path) -> None:
    data = load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir))
    x, y = torch.cat([data.train_x, data.val_x]), torch.cat([data.train_y, data.val_y])
    assert x[:, 1:].abs().max() < 1e-3  # constant green and blue planes normalise to zero
    red = x[:, 0].mean(dim=(1, 2))
    order = torch.argsort(y)
    assert torch.all(red[order][1:] >= red[order][:-1])  # red brightness follows the label


def test_cifar10_accepts_the_parent_of_the_extracted_directory_and_resizes(cifar_dir: Path) -> None:
    data = load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir.parent, resolution=16))
    assert data.train_x.shape[1:] == (3, 16, 16)


def test_missing_cifar_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist") as info:
        load_dataset(DatasetSpec(kind="cifar10", path=tmp_path / "nowhere"))
    assert info.value.path == str(tmp_path / "nowhere")


def test_a_file_given_as_the_cifar_directory_is_an_error(cifar_dir: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir / "data_batch_1"))


@pytest.mark.parametrize("missing", ["data_batch_3", "batches.meta"])
def test_a_missing_batch_file_is_named(cifar_dir: Path, missing: str) -> None:
    (cifar_dir / missing).unlink()
    with pytest.raises(DatasetError, match="missing CIFAR-10 batch file") as info:
        load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir))
    assert info.value.path == str(cifar_dir / missing)


@pytest.mark.parametrize(("content", "message"), [
    (b"this is not a pickle", "malformed pickle"),
    (pickle.dumps([1, 2, 3]), "expected a dict, got list"),
    (pickle.dumps({b"labels": [0]}), "no 'data' entry"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"uint8 \[N, 3072\]"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), r"uint8 \[N, 3072\]"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "'labels' must be 2 integers"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), r"labels outside 0\.\.9"),
])
def test_a_malformed_batch_is_named_with_what_is_wrong(cifar_dir: Path, content: bytes, message: str) -> None:
    (cifar_dir / "data_batch_2").write_bytes(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir))
    assert info.value.path == str(cifar_dir / "data_batch_2")


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_a_batch_file_cannot_execute_code(cifar_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cifar_dir / "data_batch_1").write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(DatasetError, match="refusing global builtins.print"):
        load_dataset(DatasetSpec(kind="cifar10", path=cifar_dir))
    assert "never run" not in capsys.readouterr().out


# -- ImageFolder -------------------------------------------------------------------------------------
def test_imagefolder_reads_class_subfolders_of_png_and_jpeg_in_any_mode_and_size(image_tree: Path) -> None:
    data = load_dataset(DatasetSpec(kind="imagefolder", path=image_tree, resolution=16, val_fraction=0.2))
    assert data.class_names == ["daisy", "rose", "tulip"] and data.num_classes == 3
    assert len(data.train_y) + len(data.val_y) == 15
    assert data.train_x.shape[1:] == (3, 16, 16) and data.val_y.bincount().tolist() == [1, 1, 1]


def test_imagefolder_subset_is_stratified_and_deterministic(image_tree: Path) -> None:
    spec = DatasetSpec(kind="imagefolder", path=image_tree, resolution=8, subset=6, val_fraction=0.5)
    a, b = load_dataset(spec), load_dataset(spec)
    assert torch.equal(a.train_x, b.train_x)
    assert torch.cat([a.train_y, a.val_y]).bincount().tolist() == [2, 2, 2]


def test_missing_imagefolder_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="ImageFolder directory does not exist"):
        load_dataset(DatasetSpec(kind="imagefolder", path=tmp_path / "absent"))


def test_a_tree_without_class_subfolders_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="no class subfolders") as info:
        load_dataset(DatasetSpec(kind="imagefolder", path=tmp_path))
    assert info.value.path == str(tmp_path)


def test_an_empty_class_folder_is_named(image_tree: Path) -> None:
    (image_tree / "lily").mkdir()
    (image_tree / "lily" / "readme.md").write_text("no images here")
    with pytest.raises(DatasetError, match="empty class folder") as info:
        load_dataset(DatasetSpec(kind="imagefolder", path=image_tree))
    assert info.value.path == str(image_tree / "lily")


def test_an_unreadable_image_is_named(image_tree: Path) -> None:
    broken = image_tree / "rose" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    with pytest.raises(DatasetError, match="unreadable image") as info:
        load_dataset(DatasetSpec(kind="imagefolder", path=image_tree))
    assert info.value.path == str(broken)
