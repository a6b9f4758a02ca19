"""Retry and wait policies, composed from tenacity's parts, on the injected clock."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from remediate.clock import Clock
from remediate.errors import TransientError


class stop_at_deadline(stop_base):  # noqa: N801 - reads like tenacity's own strategies
    """Stop once the injected clock passes ``deadline`` (virtual time included)."""

    def __init__(self, clock: Clock, deadline: datetime) -> None:
        self.clock = clock
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock.now() >= self.deadline


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TransientError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Transient errors are retried with exponential backoff and jitter, up to a deadline."""

    attempts: int = 6
    initial_s: float = 1.0
    max_wait_s: float = 30.0
    deadline_s: float = 300.0

    @classmethod
    def within(cls, deadline_s: float) -> RetryPolicy:
        """Retry for ``deadline_s`` seconds, however many attempts that takes (a short one
        fails fast on a host that is down; a long one waits out a rebooting DC)."""
        return cls(attempts=sys.maxsize, deadline_s=deadline_s)

    def retrying(
        self, clock: Clock, on_retry: Callable[[RetryCallState], None] | None = None
    ) -> Retrying:
        deadline = clock.now() + timedelta(seconds=self.deadline_s)
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.attempts) | stop_at_deadline(clock, deadline),
            wait=wait_exponential_jitter(initial=self.initial_s, max=self.max_wait_s),
            sleep=clock.sleep,
            before_sleep=on_retry,
            reraise=True,
        )


def until_converged(
    clock: Clock,
    *,
    deadline_s: float,
    poll_s: float,
    poll_max_s: float,
    on_poll: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """Poll while the call returns False, backing off, until the deadline passes."""
    deadline = clock.now() + timedelta(seconds=deadline_s)
    return Retrying(
        retry=retry_if_result(lambda converged: not converged),
        stop=stop_at_deadline(clock, deadline),
        wait=wait_exponential(multiplier=poll_s, max=poll_max_s),
        sleep=clock.sleep,
        before_sleep=on_poll,
        retry_error_callback=lambda state: False,
    )
