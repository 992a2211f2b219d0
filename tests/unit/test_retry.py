"""wt_invokers.retry: the one retry loop, its policy and its hooks."""

from __future__ import annotations

import asyncio

import pytest

from wt_invokers.retry import RetryPolicy, retry_call


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"down {self.calls}")
        return "ok"


def _give_up(exc: BaseException, code: str, attempts: int) -> BaseException:
    return RuntimeError(f"gave up after {attempts} ({code})")


def test_retries_transient_failures_through_the_callers_sleep_and_tells_each_one() -> None:
    flaky = Flaky(failures=3)
    told: list[tuple[str, str, float]] = []
    slept: list[float] = []

    async def on_failure(exc: BaseException, code: str, pause: float) -> None:
        told.append((str(exc), code, pause))

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = asyncio.run(
        retry_call(
            "get",
            flaky,
            policy=RetryPolicy(max_attempts=None, initial_backoff=1.0, max_backoff=2.0),
            transient=lambda exc: "DOWN",
            give_up=_give_up,
            on_failure=on_failure,
            sleep=sleep,
        )
    )
    assert result == "ok" and flaky.calls == 4
    assert [t[:2] for t in told] == [("down 1", "DOWN"), ("down 2", "DOWN"), ("down 3", "DOWN")]
    # Each pause told is the pause taken, drawn from [0, bound] with the bound capped at 2 s.
    assert slept == [t[2] for t in told]
    assert all(0 <= p <= 2.0 for p in slept) and slept[0] <= 1.0


def test_gives_up_after_max_attempts_with_the_callers_error() -> None:
    flaky = Flaky(failures=10)

    async def no_wait(seconds: float) -> None:
        return None

    with pytest.raises(RuntimeError, match=r"gave up after 3 \(DOWN\)"):
        asyncio.run(
            retry_call(
                "get",
                flaky,
                policy=RetryPolicy(max_attempts=3),
                transient=lambda exc: "DOWN",
                give_up=_give_up,
                sleep=no_wait,
            )
        )
    assert flaky.calls == 3


def test_a_permanent_failure_propagates_untouched_at_once() -> None:
    flaky = Flaky(failures=1)
    with pytest.raises(ConnectionError, match="down 1"):
        asyncio.run(
            retry_call(
                "get", flaky, policy=RetryPolicy(), transient=lambda exc: None, give_up=_give_up
            )
        )
    assert flaky.calls == 1
