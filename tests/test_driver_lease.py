"""One driver per search, ever: the lease on a search row (claim, renewal, fencing token), against a SQLite
file and a fresh PostgreSQL database. The worker-level behaviour (a message delivered twice, ``nas doctor
--fix`` on a live driver) is in ``tests/test_distributed.py``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from nas.errors import LeaseLost
from nas.search import parse_spec
from nas.service import SearchStatus, claim_search, create_search, get_search, mark_finished, touch_search
from nas.service._models import SearchRow, utcnow
from nas.service.store import update_progress
from nas.storage import session_scope

from .api_support import SPEC

pytest_plugins = ["tests.service_fixtures"]  # database_url

spec = parse_spec({**SPEC, "name": "lease"}, "test")
LEASE = 60.0


def _age(url: str, search_id: str, seconds: float) -> None:
    """As if the holder last wrote ``seconds`` ago (its process died then)."""
    with session_scope(url) as s:
        s.execute(update(SearchRow).where(SearchRow.id == search_id)
                  .values(updated_at=utcnow() - timedelta(seconds=seconds)))


def test_a_second_claim_is_refused_while_the_first_drivers_lease_is_live(database_url: str) -> None:
    rec = create_search(database_url, spec, uuid.uuid4().hex)
    first = claim_search(database_url, rec.id, "host-a", LEASE)
    assert first.token == 1
    second = claim_search(database_url, rec.id, "host-b", LEASE)
    assert second.token is None and second.held_for is not None and 0 < second.held_for <= LEASE
    assert "driven by host-a" in second.reason
    row = get_search(database_url, rec.id)
    assert (row.worker, row.attempts) == ("host-a", 1), "a refused claim changes nothing"


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(database_url: str) -> None:
    rec = create_search(database_url, spec, uuid.uuid4().hex)
    old = claim_search(database_url, rec.id, "host-a", LEASE).token
    _age(database_url, rec.id, LEASE + 1)
    new = claim_search(database_url, rec.id, "host-b", LEASE).token
    assert (old, new) == (1, 2)
    with pytest.raises(LeaseLost, match="taken over by host-b"):
        touch_search(database_url, rec.id, old)
    with pytest.raises(LeaseLost):
        update_progress(database_url, rec.id, finished=1, budget_trials=4, running=0, elapsed_seconds=1.0,
                        best_value=None, best_trial=None, message="stale", token=old)
    with pytest.raises(LeaseLost):
        mark_finished(database_url, rec.id, SearchStatus.failed, error="stale driver", token=old)
    touch_search(database_url, rec.id, new)
    row = get_search(database_url, rec.id)
    assert row.status is SearchStatus.running and row.message != "stale" and row.worker == "host-b"


def test_a_renewed_lease_stays_live_and_a_failed_driver_may_take_its_own_lease_back(database_url: str) -> None:
    rec = create_search(database_url, spec, uuid.uuid4().hex)
    token = claim_search(database_url, rec.id, "host-a", LEASE).token
    _age(database_url, rec.id, LEASE - 5)
    touch_search(database_url, rec.id, token)  # the heartbeat
    assert claim_search(database_url, rec.id, "host-b", LEASE).token is None
    retried = claim_search(database_url, rec.id, "host-a", LEASE, resuming=token)
    assert retried.token == 2, "the retry of the driver that held token 1 resumes"
    assert claim_search(database_url, rec.id, "host-c", LEASE, resuming=token).token is None, "token 1 is stale"


def test_final_and_cancelled_searches_are_never_claimed(database_url: str) -> None:
    rec = create_search(database_url, spec, uuid.uuid4().hex)
    token = claim_search(database_url, rec.id, "host-a", LEASE).token
    mark_finished(database_url, rec.id, SearchStatus.succeeded, result={}, token=token)
    refused = claim_search(database_url, rec.id, "host-b", LEASE)
    assert refused.token is None and refused.held_for is None and "succeeded" in refused.reason


def test_a_cancel_that_no_live_driver_will_see_is_carried_out_by_the_next_claim(database_url: str) -> None:
    """Cancelled while its driver was dead or waiting for a retry: the search must not stay running for
    ever. The next delivery (the retry, a redelivery, ``nas doctor --fix``) ends it instead of driving it."""
    from nas.service import request_cancel

    rec = create_search(database_url, spec, uuid.uuid4().hex)
    token = claim_search(database_url, rec.id, "host-a", LEASE).token
    request_cancel(database_url, rec.id, rec.owner_id)
    live = claim_search(database_url, rec.id, "host-b", LEASE)
    assert live.token is None and not live.cancelled_now
    assert get_search(database_url, rec.id).status is SearchStatus.running, "its live driver ends it"

    _age(database_url, rec.id, LEASE + 1)
    retried = claim_search(database_url, rec.id, "host-a", LEASE, resuming=token)
    assert retried.token is None and retried.cancelled_now
    row = get_search(database_url, rec.id)
    assert row.status is SearchStatus.cancelled and row.finished_at is not None
    again = claim_search(database_url, rec.id, "host-b", LEASE)
    assert again.token is None and not again.cancelled_now
