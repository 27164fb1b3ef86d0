"""Retry what is transient, with exponential backoff and jitter; never re-send a started step.

A :class:`~hvauto.errors.TransportError` is retried when it is ``transient`` and either
the step is idempotent (it inspects before it acts) or the error came before the script
reached the host (``sent`` is false). Anything else is raised at once: a non-idempotent
step whose answer was lost must be re-inspected by its operation, not sent again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hvauto.errors import TransportError

T = TypeVar("T")
log = logging.getLogger("hvauto.retry")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5

    def may_retry(self, exc: BaseException, *, idempotent: bool) -> bool:
        return isinstance(exc, TransportError) and exc.transient and (idempotent or not exc.sent)


NO_RETRY = RetryPolicy(attempts=1)


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, *, idempotent: bool, what: str = "") -> T:
    if policy.attempts <= 1:
        return fn()
    # The first attempt needs no retry machinery: tenacity is imported only once one has failed
    # in a way worth retrying (it costs ~25 ms of start-up on every command otherwise).
    try:
        return fn()
    except Exception as exc:
        if not policy.may_retry(exc, idempotent=idempotent):
            raise
        log.warning("%s: attempt 1 of %d failed (%s); trying again", what, policy.attempts, exc)
    import tenacity

    def _log(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d of %d failed (%s); trying again in %.1f s", what, state.attempt_number + 1,
                    policy.attempts, exc, state.next_action.sleep if state.next_action else 0.0)

    # Exponential backoff plus random jitter, so that many clients do not retry in step. Attempt n
    # (from 1) that fails waits initial * 2**(n-1), at most maximum; tenacity counts from the second
    # attempt here, so the first wait is paid before it and its multiplier is doubled.
    time.sleep(min(policy.initial, policy.maximum) + random.uniform(0, policy.jitter))
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts - 1),
        wait=tenacity.wait_exponential(multiplier=policy.initial * 2, max=policy.maximum)
        + tenacity.wait_random(0, policy.jitter),
        retry=tenacity.retry_if_exception(lambda e: policy.may_retry(e, idempotent=idempotent)),
        before_sleep=_log,
        reraise=True,
    )
    return retrying(fn)
