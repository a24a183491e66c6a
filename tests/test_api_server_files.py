"""A search submitted to the service never makes it read a server file: architectures are named by a
shipped reference name, the one-line string form or an inline document, and dataset paths must lie under
``NAS_DATA_DIRS`` (none by default). A refusal is a 422 naming the field that neither echoes a file nor
tells whether a path exists. ``nas run`` (a local user's own machine) may still name local files, and
``nas submit`` refuses what JSON cannot carry in one line before sending anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .api_support import REPO, SPEC, Service, remove_messages, server_env, start_server, stop_server

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

REFERENCES = REPO / "search_spaces" / "references"


def netadapt(seed: Any, **options: Any) -> dict[str, Any]:
    return {**SPEC, "strategy": {"name": "netadapt", "options": {"seed": seed, **options}}}


def imagefolder(path: str) -> dict[str, Any]:
    return {**SPEC, "proxy": {"dataset": {"kind": "imagefolder", "path": path}}}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refusal_neither_echoes_a_file_nor_tells_whether_it_exists(service: Service) -> None:
    with service.client(service.token()) as c:
        def msg(document: dict[str, Any], name: str) -> str:
            response = c.post("/searches", json=document)
            assert response.status_code == 422, response.text
            return str(response.json()["detail"][0]["msg"]).replace(name, "NAME")

        seeds = {name: msg(netadapt(name), name) for name in ("/etc/passwd", "/etc/no-such-file-here",
                                                              "/etc/hostname.json", "../../etc/passwd")}
        targets = {name: msg({**SPEC, "latency": {"target_reference": name}}, name)
                   for name in ("/etc/passwd", "/etc/no-such-file-here")}
        datasets = {path: msg(imagefolder(path), path) for path in ("/etc", "/no/such/dir", "/proc/self")}
        weights = {path: msg(netadapt("mobilenetv3-small-0.75", seed_weights=path), path)
                   for path in ("/etc/passwd", "/no/such/weights.pt")}
    for found in (seeds, targets, datasets, weights):
        assert len(set(found.values())) == 1, found  # the same words for a file that exists and one that does not
    assert "root:" not in json.dumps([seeds, targets, datasets, weights])
    assert "NAS_DATA_DIRS" in weights["/etc/passwd"]
    assert "reference name" in seeds["/etc/passwd"] and "NAS_DATA_DIRS" in datasets["/etc"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_architectures_by_reference_name_string_form_or_inline_document_are_accepted(service: Service) -> None:
    from nas.arch import load_architecture, to_string

    seed = json.loads((REFERENCES / "mobilenetv3-small-1.0.json").read_text())
    target = to_string(load_architecture("mobilenetv3-small-0.75"))
    with service.client(service.token()) as c:
        by_name = service.submit(c, strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-1.0"}})
        inline = service.submit(c, strategy={"name": "netadapt", "options": {"seed": seed}},
                                latency={"target_reference": target})
        stored = c.get(f"/searches/{inline['id']}").json()["spec"]
    assert by_name["status"] == inline["status"] == "queued"
    assert stored["strategy"]["options"] == {"seed": seed}  # stored as given, no defaults added
    assert stored["latency"]["target_reference"] == target


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_inline_seed_is_checked_like_any_architecture(service: Service) -> None:
    seed = json.loads((REFERENCES / "mobilenetv3-small-1.0.json").read_text())
    seed["stem"]["channels"] = -16
    with service.client(service.token()) as c:
        response = c.post("/searches", json=netadapt(seed))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "strategy", "options", "seed", "stem", "channels"]


# -- a service with a data directory ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    (root / "flowers" / "rose").mkdir(parents=True)
    (root / "escape").symlink_to("/etc")
    return root


@pytest.fixture(scope="module")
def data_service(data_root: Path, redis_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("data-service")
    url = f"sqlite:///{home / 'nas.db'}"
    proc, base = start_server(server_env(url, home, NAS_DATA_DIRS=f"{data_root}, /nonexistent-data"),
                              home / "server.log")
    svc = Service(base, url, home)
    try:
        yield svc
    finally:
        stop_server(proc)
        remove_messages(redis_client, svc.submitted)


def test_dataset_paths_are_accepted_only_under_the_data_directories(data_service: Service, data_root: Path) -> None:
    with data_service.client(data_service.token()) as c:
        flowers = {"kind": "imagefolder", "path": str(data_root / "flowers")}
        accepted = data_service.submit(c, proxy={"dataset": flowers})
        assert accepted["status"] == "queued"
        refused = {path: c.post("/searches", json=imagefolder(path)) for path in (
            "/etc", str(data_root / ".." / ".." / "etc"), str(data_root / "escape"), "flowers",
            f"{data_root}-sibling")}
    for path, response in refused.items():
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "proxy", "dataset", "path"], path
        assert str(data_root) in detail["msg"] and "NAS_DATA_DIRS" in detail["msg"]


def test_nas_run_may_still_name_local_files(tmp_path: Path) -> None:
    from nas.search import load_spec

    seed = tmp_path / "seed.json"
    seed.write_text((REFERENCES / "mobilenetv3-small-1.0.json").read_text())
    (tmp_path / "data" / "a").mkdir(parents=True)
    spec_file = tmp_path / "spec.yaml"
    dataset = {"kind": "imagefolder", "path": str(tmp_path / "data")}
    spec_file.write_text(yaml.safe_dump({**SPEC, "strategy": {"name": "netadapt", "options": {"seed": str(seed)}},
                                         "proxy": {"dataset": dataset}}))
    spec = load_spec(spec_file)
    assert spec.strategy.options.seed_architecture.stem.channels == 16  # type: ignore[attr-defined]


# -- nas submit --------------------------------------------------------------------------------------------------
def nas_submit(spec: str | bytes, tmp_path: Path, url: str, token: str = "nas_x") -> subprocess.CompletedProcess[str]:
    (tmp_path / "spec.yaml").write_bytes(spec if isinstance(spec, bytes) else spec.encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")} | {"NAS_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "nas", "submit", "spec.yaml", "--url", url, "--token", token],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.parametrize(("text", "expected"), [
    ("latency: {target_ms: .nan}\n", "spec.yaml: latency.target_ms: must be a finite number"),
    ("latency: {target_ms: 5}\nbudget: {seconds: .inf}\n", "spec.yaml: budget.seconds: must be a finite number"),
    ("latency: {target_ms: 5}\nreward: {kind: custom, alpha: -.inf, beta: 0}\n", "spec.yaml: reward.alpha: must be"),
    ("latency: {target_ms: 5}\nname: 2026-11-29\n", "spec.yaml: name: a date is not a JSON value"),
    ("latency: {target_ms: 5, 2026-11-29: 1}\n", "spec.yaml: latency: a key must be text, got date"),
    ("name: caf\xe9\n".encode("latin-1"), "spec.yaml: (document): not UTF-8 text"),
])
def test_nas_submit_refuses_what_json_cannot_carry_in_one_line_before_sending(tmp_path: Path, text: str | bytes,
                                                                             expected: str) -> None:
    result = nas_submit(text, tmp_path, "http://127.0.0.1:9")  # nothing listens: the spec must not be sent
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}") and result.stdout == ""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("changes", "expected"), [
    ({"latency": {"target_ms": -3}}, "error: latency.target_ms: must be a finite number > 0"),
    ({"reward": {"kind": "custom"}}, "error: reward.alpha: required for kind=custom"),
    ({"strategy": {"name": "netadapt", "options": {"seed": "/etc/passwd"}}}, "error: strategy.options.seed: unknown"),
])
def test_nas_submit_reports_the_services_refusal_in_one_line(service: Service, tmp_path: Path,
                                                             changes: dict[str, Any], expected: str) -> None:
    result = nas_submit(yaml.safe_dump({**SPEC, **changes}), tmp_path, service.base_url, service.token())
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(expected) and result.stdout == ""


def test_netadapt_seed_weights_are_accepted_only_under_the_data_directories(data_service: Service,
                                                                            data_root: Path) -> None:
    """Pretrained weights for NetAdapt's seed are a server file: the same rule as dataset paths."""
    with data_service.client(data_service.token()) as c:
        inside = c.post("/searches", json=netadapt("mobilenetv3-small-0.75",
                                                   seed_weights=str(data_root / "flowers" / "w.pt")))
        outside = c.post("/searches", json=netadapt("mobilenetv3-small-0.75", seed_weights="/etc/passwd"))
        if inside.status_code == 202:
            data_service.submitted.add(inside.json()["id"])
    assert inside.status_code == 202, inside.text
    assert outside.status_code == 422
    detail = outside.json()["detail"][0]
    assert detail["loc"][-1] == "seed_weights" and "NAS_DATA_DIRS" in detail["msg"]
