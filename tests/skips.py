"""Which skips CI accepts. With ``CI=true`` a skipped test fails, because a test that needs a real part
(Redis, PostgreSQL, Celery, Chromium, docker-compose) and skips has tested nothing. The one exception is a
test that does not apply to this machine or parameter at all (a CUDA-only check on a CPU host, a connection
kill on SQLite): its reason starts with ``NOT_APPLICABLE``."""

from __future__ import annotations

import os

NOT_APPLICABLE = "not applicable:"


def skips_fail() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def accepted(reason: str) -> bool:
    """Whether a skip with this reason may stand in CI."""
    return reason.startswith(NOT_APPLICABLE)
