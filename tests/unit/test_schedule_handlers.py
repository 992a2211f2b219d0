"""What a WorkflowSchedule's daemon does with a pass that failed."""

from __future__ import annotations

import kopf
import pytest

from wt_operator.kopf_errors import to_kopf
from wt_operator.schedule_handlers import RETRY_AFTER_ERROR, after_error
from wt_operator.shell.kube import HttpError


@pytest.mark.parametrize("status", [403, 409, 429, 503])
def test_a_transient_api_refusal_goes_to_kopf_to_be_retried_with_backoff(status: int) -> None:
    error = HttpError(status, "refused", b'{"message": "not yet"}')
    with pytest.raises(HttpError) as caught:
        after_error(error, "team-a", "monthly")
    with pytest.raises(kopf.TemporaryError):
        to_kopf(caught.value, retry=0, cap=60.0)


@pytest.mark.parametrize("status", [400, 422])
def test_an_invalid_request_is_retried_by_the_daemon_itself_so_the_schedule_keeps_firing(
    status: int,
) -> None:
    # kopf would never start a daemon again after a permanent error, even once the
    # schedule is fixed; the daemon's own loop also wakes on an edit.
    assert after_error(HttpError(status, "Invalid", b""), "team-a", "monthly") == RETRY_AFTER_ERROR
