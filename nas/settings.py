"""One settings class shared by the library, the API and the workers (environment prefix ``NAS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from nas.errors import SettingsError


class Settings(BaseSettings):
    # An empty variable means unset (NAS_ARTIFACT_CACHE= is the default directory, not the working one).
    model_config = SettingsConfigDict(env_prefix="NAS_", env_file=".env", extra="ignore", env_ignore_empty=True)

    home: Path = Field(default=Path("runs"), description="Where the embedded database and artefacts live.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in NAS_HOME.")
    redis_url: str = "redis://127.0.0.1:6379/0"
    log_level: str = "INFO"
    search_parallelism: int = Field(default=2, ge=1, le=256, description="Candidates in flight per search.")
    device_ttl: float = Field(default=60.0, gt=0, description="A latency worker counts as live this long.")
    task_visibility_timeout: int = Field(default=6 * 3600, description="Redis redelivery delay for unacked tasks.")
    driver_lease: float = Field(
        default=60.0, gt=0, description="Seconds a search driver's lease lasts without renewal (it renews every "
        "quarter of it); a second driver is refused while it is live and takes over once it expired.")
    device_wait: float = Field(
        default=600.0, gt=0, description="Seconds a search waits for a live worker on its device's latency queue "
        "before it fails.")
    worker_shutdown_grace: float = Field(
        default=10.0, ge=0, le=3600, description="Seconds the tasks a `nas worker` is running get to finish when it "
        "is stopped (SIGTERM, Ctrl-C); then they are cancelled and their messages go back to Redis for the next "
        "worker (a search resumes from the database). Celery's own warm shutdown would wait for a whole search.")
    search_drivers: int = Field(default=2, ge=1, le=64, description="Search drivers of a default `nas worker`.")
    api_url: str = Field(default="http://127.0.0.1:8000", description="Where CLI client commands send requests.")
    api_token: str = Field(default="", description="Bearer token for CLI client commands (`nas token create`).")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger API request bodies get 413.")
    api_db_connections: int = Field(
        default=16, ge=1, le=100, description="PostgreSQL connections per API process for its per-request "
        "statements, opened on demand (with 50 back-to-back clients 16 kept the p99 at a third of 8's).")
    artifact_cache: Path | None = Field(
        default=None, description="Where converted files (.onnx, .tflite, OpenVINO IR) a latency worker times are "
        "kept; empty means nas-artifacts under the system's temporary directory.")
    artifact_cache_mb: float = Field(
        default=8192, ge=0, allow_inf_nan=False, description="Megabytes of converted files kept, most recently used "
        "first: `nas latency validate --n 100` times 140 files twice, and an OpenVINO ShuffleNet at 224 is 17 MB "
        "(2048 held 122 of them, fewer than the 140 a pass needs, so each pass evicted files it was about to time "
        "again); LiteRT converts one in 10-15 s.")
    search_spaces_dir: Path | None = Field(
        default=None, description="Where the shipped spaces, reference architectures and device profiles are read "
        "from; empty means the package's own search_spaces/ (set it for an installed, non-editable deployment).")
    devices_dir: Path | None = Field(
        default=None, description="A directory of your own device profiles (YAML, one per file), read after the "
        "shipped ones: a profile of the same name there wins.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser origins allowed to call the API, comma-separated; none by default.")
    data_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Directories under which a search submitted to the service may name a "
        "dataset path (cifar10, imagefolder), comma-separated; none by default: through the service only the "
        "built-in digits. The same value on the API and the search workers. `nas run` is not restricted.")

    @field_validator("cors_origins", "data_dirs", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'nas.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_variable_error(e) for e in exc.errors())) from None


def _variable_error(error: Any) -> str:
    field = "_".join(str(part) for part in error["loc"])
    return f"NAS_{field.upper()}: {error['msg']} (got {error['input']!r})"
