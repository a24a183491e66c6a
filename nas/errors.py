"""One exception root for the library; the API and the CLI translate it in one place each."""

from __future__ import annotations


class NASError(Exception):
    """Root of every error the library raises on purpose."""


class SpaceError(NASError):
    """A search-space file is malformed or names something unknown."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source, self.field, self.reason = source, field, reason
        super().__init__(f"{source}: {field}: {reason}")


class ArchitectureError(NASError):
    """An architecture document is malformed, or is not a member of its space."""

    def __init__(self, field: str, reason: str, source: str | None = None) -> None:
        self.field, self.reason, self.source = field, reason, source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{field}: {reason}")


class NotFoundError(NASError):
    """A named thing (space, reference, device profile, search) does not exist."""

    def __init__(self, kind: str, name: str, known: list[str] | None = None) -> None:
        self.kind, self.name = kind, name
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")


class ExportError(NASError):
    """A model could not be exported or checked in the target runtime."""


class WeightsError(NASError):
    """A weights file cannot be imported into a network: names the file and the offending key or field."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class DatasetError(NASError):
    """A proxy dataset cannot be loaded: names the path and what is wrong with it."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class RewardError(NASError):
    """A reward specification or a value given to it is invalid: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class TrainingError(NASError):
    """A proxy training run was asked for something impossible (e.g. data and network class counts differ)."""


class LatencyError(NASError):
    """A latency cannot be measured or predicted: a malformed device profile, a runtime that is not
    available here, a network that does not run on the profile, or missing lookup-table entries."""


class SpecError(NASError):
    """A search spec (YAML file or API body) is malformed."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source, self.field, self.reason = source, field, reason
        super().__init__(f"{source}: {field}: {reason}")


class SearchError(NASError):
    """A search cannot start or continue (unknown study, inconsistent resume, ...)."""


class SearchCancelled(NASError):
    """The search's owner asked it to stop; the driver stops between trials."""


class LeaseLost(NASError):
    """Another driver claimed the search (this driver's lease expired, or its fencing token is stale):
    this one stops without touching the search or its trials again."""


class DeviceUnavailable(SearchError):
    """No worker served the search's device queue for longer than ``NAS_DEVICE_WAIT``."""


class TrialAbandoned(NASError):
    """A trial ended while its task still worked on it (its search was cancelled, or a new driver re-runs
    it): the task stops and records nothing."""


class ConflictError(NASError):
    """A request is valid but the thing's current state forbids it (cancelling a finished search,
    creating a token whose name is taken); the API answers 409."""


class ServiceError(NASError):
    """The NAS service answered a client request with an error, or could not be reached. The message
    is the service's own one-line reason; ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


class DatabaseUnavailableError(Exception):
    """The database refused or dropped the connection (restarting, out of connections). Not a ``NASError``:
    nothing is wrong with the request, and the API answers 503 with Retry-After, not 4xx."""


class SupernetError(NASError):
    """A supernet cannot be trained, resumed or loaded as asked (a checkpoint from another spec, a file
    that is not a supernet)."""


class SettingsError(NASError):
    """An ``NAS_*`` environment variable (or ``.env`` entry) holds a value the settings cannot take: names the
    variable, the reason and the value, once, instead of a validation traceback wherever settings are read."""
