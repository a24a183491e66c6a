"""The remote runner: a profile whose device is reached by the user's commands (``adb``, ``ssh``, ...).

For each network the runner writes the deployable file in the profile's format (``nas.export``, cached
by ``_artifacts``), runs the optional ``push`` command (copy it to the device), then the ``run`` command
(the device's benchmark binary), and reads one latency from the run's output with ``parse``: a regex
whose group ``value`` (or first group) is the number and optional group ``unit`` its unit (us, ms
or s; OpenVINO's ``benchmark_app`` switches between us and ms), or ``json`` (a dotted path into a JSON document
printed on the last line that parses). ``unit`` says what that number is in. Commands are templates run
by ``sh -c``, with ``{model}`` (the local file), ``{model_name}``, ``{model_dir}``, ``{files}`` (the
model and, for OpenVINO, its ``.bin``), ``{threads}``,
``{batch}`` and ``{device}`` filled in, shell-quoted. A failing or unparsable run is retried
``retries`` times, then reported with the device, the command and its last output lines.
Whole networks only: lookup-table parts are not timed remotely.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas._documents import first_error
from nas.errors import LatencyError
from nas.latency._artifacts import calibration_spec, network_artifact
from nas.latency._parts import Part
from nas.latency._runtimes import Runtime, register_runtime
from nas.latency._timing import LatencyStats, TimingSettings

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_FIELDS = ("model", "model_name", "model_dir", "files", "threads", "batch", "device")
TAIL_LINES = 8


class ParseRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regex: str | None = None
    json_path: str | None = Field(default=None, alias="json")
    unit: Literal["us", "ms", "s"] = "ms"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
            if pattern.groups == 0:
                raise ValueError("needs a group around the number, e.g. 'avg=([0-9.]+)'")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> ParseRule:
        if (self.regex is None) == (self.json_path is None):
            raise ValueError("give exactly one of regex or json")
        return self


class RemoteOptions(BaseModel):
    """A remote profile's ``options``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["onnx", "tflite", "openvino"] = "tflite"
    int8: bool = False
    push: str | None = Field(default=None, description="Copies {model} to the device; optional.")
    run: str = Field(description="Runs the device's benchmark and prints its latency.")
    parse: ParseRule
    timeout: float = Field(default=600.0, gt=0, description="Seconds per command.")
    retries: int = Field(default=1, ge=0, le=10)
    calibration: Any = {"kind": "digits"}
    calibration_images: int = Field(default=8, ge=1)

    @field_validator("push", "run")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(**{f: "" for f in _FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"unknown placeholder {exc} (known: {', '.join(_FIELDS)})") from None
        return value


def _dig(doc: Any, path: str) -> Any:
    for key in path.split("."):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


def parse_latency(output: str, rule: ParseRule) -> float | None:
    """The latency in ms found in ``output`` by ``rule``, or None."""
    value: Any = None
    unit: str = rule.unit
    if rule.regex is not None:
        matches = list(re.finditer(rule.regex, output))  # the last: benchmarks print warm-up figures first
        if matches:
            match = matches[-1]
            groups = match.groupdict()
            value = groups["value"] if "value" in groups else match.group(1)
            unit = groups.get("unit") or unit
    else:
        assert rule.json_path is not None
        for line in reversed(output.strip().splitlines()):
            try:
                value = _dig(json.loads(line), rule.json_path)
                break
            except (ValueError, KeyError, IndexError, TypeError):
                continue
    try:
        return float(value) * _UNITS[unit] if value is not None else None
    except (TypeError, ValueError, KeyError):
        return None


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-TAIL_LINES:]) or "(no output)"


@register_runtime
class RemoteRuntime(Runtime):
    name = "remote"
    local = False

    @classmethod
    def deployed(cls, options: dict[str, Any]) -> tuple[str, bool] | None:
        opts = cls.options_of(options)
        return opts.format, opts.int8

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        cls.options_of(options)

    @staticmethod
    def options_of(options: dict[str, Any], device: str | None = None) -> RemoteOptions:
        try:
            return RemoteOptions.model_validate(options)
        except ValidationError as exc:
            loc, reason = first_error(exc)
            raise LatencyError(f"{f'device {device}: ' if device else ''}options.{loc}: {reason}") from None

    def prepare(self, part: Part) -> Callable[[], object]:
        raise LatencyError(f"device {self.profile.name} is remote: it times whole networks through its command")

    def _command(self, template: str, model: Path) -> str:
        values = {"model": str(model), "model_name": model.name, "model_dir": str(model.parent),
                  "threads": str(self.profile.threads), "batch": str(self.profile.batch),
                  "device": self.profile.name}
        files = [model, *([model.with_suffix(".bin")] if model.suffix == ".xml" else [])]
        return template.format(**{k: shlex.quote(v) for k, v in values.items()},
                               files=" ".join(shlex.quote(str(f)) for f in files))

    def _run(self, command: str, timeout: float) -> str:
        """Stdout and stderr of ``command``; raises LatencyError naming device and command on failure."""
        where = f"device {self.profile.name}: command `{command}`"
        try:
            done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"") if isinstance(exc.stdout, bytes) else (exc.stdout or "").encode()
            raise LatencyError(f"{where} timed out after {timeout:g} s; last output: "
                               f"{_tail(out.decode(errors='replace'))}") from None
        output = done.stdout + ("\n" + done.stderr if done.stderr else "")
        if done.returncode != 0:
            raise LatencyError(f"{where} exited with code {done.returncode}; last output: {_tail(output)}")
        return output

    def time_network(self, part: Part) -> LatencyStats:
        opts = self.options_of(self.profile.options, self.profile.name)
        model = network_artifact(part.spec, opts.format, int8=opts.int8, batch=self.profile.batch,
                                 calibration=calibration_spec(self.profile.options))
        error: LatencyError | None = None
        for _ in range(opts.retries + 1):
            try:
                if opts.push:
                    self._run(self._command(opts.push, model), opts.timeout)
                command = self._command(opts.run, model)
                output = self._run(command, opts.timeout)
                ms = parse_latency(output, opts.parse)
                if ms is None:
                    rule = opts.parse.regex or f"json {opts.parse.json_path}"
                    raise LatencyError(f"device {self.profile.name}: no latency found by {rule!r} in the output "
                                       f"of `{command}`; last output: {_tail(output)}")
                return LatencyStats(median_ms=ms, p10_ms=ms, p90_ms=ms, mean_ms=ms, min_ms=ms, runs=1, ci_rel=0.0)
            except LatencyError as exc:
                error = exc
        assert error is not None
        raise error

    def measure(self, parts: Sequence[Part], timing: TimingSettings, canary: Part | None = None
                ) -> list[LatencyStats | str]:
        """Each network through the device's command, one after the other; no speed canary (a
        dedicated device is not rescaled)."""
        results: list[LatencyStats | str] = []
        for part in parts:
            if part.kind != "network":
                results.append(f"device {self.profile.name} is remote: it times whole networks only, "
                               f"not a {part.kind}")
                continue
            try:
                results.append(self.time_network(part))
            except LatencyError as exc:
                results.append(str(exc))
        if canary is not None:
            results.append("no speed canary on a remote device")
        return results
