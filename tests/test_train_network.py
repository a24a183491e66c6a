"""``nas train``: knowledge distillation's loss, training from a supernet's weights with a teacher, exact
resume after Ctrl-C, export with provenance, and the command's errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from nas.arch import load_architecture
from nas.distill import kd_loss
from nas.export import load_state
from nas.supernet import extract, load_supernet, parse_supernet_spec, train_supernet
from nas.training import TeacherSpec, TrainJob, train_network

DATA = {"kind": "digits", "resolution": 32, "subset": 240}
RECIPE = {"epochs": 2, "batch_size": 48, "lr": 0.05, "resolution": 32, "bn_recalibration": 96, "threads": 1}


@pytest.fixture(scope="module")
def supernet_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("supernet")
    spec = parse_supernet_spec({"name": "t", "dataset": DATA, "recipe": {**RECIPE, "epochs": 1},
                                "sandwich": {"random": 0}})
    train_supernet(spec, out)
    return str(out / "supernet.pt")


def test_kd_loss_is_alpha_kl_times_tau_squared_plus_one_minus_alpha_ce() -> None:
    g = torch.Generator().manual_seed(0)
    s, t, y = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g), torch.randint(0, 10, (8,), generator=g)
    tau, alpha = 3.0, 0.7
    p_t = F.softmax(t / tau, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / tau, 1))).sum(1).mean()
    expected = alpha * kl * tau * tau + (1 - alpha) * F.cross_entropy(s, y)
    assert torch.allclose(kd_loss(s, t, y, alpha=alpha, temperature=tau), expected, atol=1e-6)
    assert torch.equal(kd_loss(s, t, y, alpha=0.0, temperature=tau), F.cross_entropy(s, y))
    teacher = t.clone().requires_grad_(True)
    kd_loss(s.requires_grad_(True), teacher, y, alpha=1.0, temperature=tau).backward()
    assert teacher.grad is None  # the teacher is never trained through the student's loss


def _arch():  # type: ignore[no-untyped-def]
    from nas.spaces import load_space

    return load_space("mobilenetv3-small").sample(seed=5, num_classes=10)


def test_training_from_the_supernet_with_its_largest_subnet_as_teacher_exports_with_provenance(
        tmp_path: Path, supernet_file: str) -> None:
    job = TrainJob(dataset=DATA, recipe=RECIPE, supernet=supernet_file, inherit=True,  # type: ignore[arg-type]
                   teacher=TeacherSpec(source="largest", alpha=0.5, temperature=4.0))
    summary = train_network(_arch(), job, tmp_path)
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    arch, model, provenance = load_state(Path(summary["files"]["state"]))
    assert arch == _arch() and provenance["fingerprint"] == job.fingerprint
    assert provenance["initial_weights"]["supernet"] == supernet_file
    assert provenance["teacher"]["source"] == "largest" and provenance["teacher"]["alpha"] == 0.5
    assert Path(summary["files"]["onnx"]).is_file()


def test_inherited_weights_are_the_extracted_subnets() -> None:
    from nas.spaces import load_space
    from nas.supernet import Supernet
    from nas.supernet._store import LoadedSupernet
    from nas.training._teacher import inherited_state

    net = Supernet(load_space("mobilenetv3-small"), 10)
    state = inherited_state(LoadedSupernet(net, {}, Path("x.pt")), _arch())
    expected = extract(net, _arch()).state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_ctrl_c_then_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path: Path, supernet_file: str) -> None:
    job = TrainJob(dataset=DATA, recipe=RECIPE, supernet=supernet_file,  # type: ignore[arg-type]
                   teacher=TeacherSpec(source="largest"))
    whole = train_network(_arch(), job, tmp_path / "whole", onnx=False)

    def interrupt(p) -> None:  # type: ignore[no-untyped-def]
        if p.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train_network(_arch(), job, tmp_path / "cut", onnx=False, on_progress=interrupt)
    resumed = train_network(_arch(), job, tmp_path / "cut", onnx=False)
    assert resumed["steps"] == whole["steps"]
    a = load_state(Path(whole["files"]["state"]))[1].state_dict()
    b = load_state(Path(resumed["files"]["state"]))[1].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["history"][-1]["val_accuracy"] == whole["history"][-1]["val_accuracy"]


def _nas(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NAS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "nas", *args], env=env, capture_output=True, text=True, timeout=600)


def test_the_command_trains_with_a_state_file_teacher_and_names_bad_options(tmp_path: Path, supernet_file: str) -> None:
    teacher = tmp_path / "teacher.pt"
    from nas.export import export_state

    big = load_supernet(supernet_file).net.largest
    export_state(big, teacher, model=extract(load_supernet(supernet_file).net, big))
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps(_arch().model_dump(mode="json")))
    done = _nas(tmp_path, "train", str(arch_file), "--subset", "240", "--epochs", "1", "--teacher", str(teacher),
                "--device", "cpu-torch-1t", "-q", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    res = _arch().resolution  # trained at the recipe's 32, deployed at the architecture's: both said
    assert out["resolution"] == {"trained": 32, "exported": res}
    assert f"at 32x32 (exported at {res}x{res})" in done.stderr
    # a torch-eager device deploys the state file itself: no ONNX, and the provenance names it
    assert set(out["files"]) == {"state", "deployable", "provenance"}
    assert out["files"]["deployable"] == out["files"]["state"]
    provenance = json.loads(Path(out["files"]["provenance"]).read_text())
    assert provenance["format"] == "pytorch" and provenance["device"]["profile"] == "cpu-torch-1t"
    assert provenance["teacher"]["kind"] == "state" and provenance["files"]["model.pt"]["size"] > 0
    bad = _nas(tmp_path, "train", str(arch_file), "--teacher", "largest")
    assert bad.returncode == 2 and "teacher.source" in bad.stderr and "supernet" in bad.stderr
    assert load_architecture(str(arch_file)) == _arch()
