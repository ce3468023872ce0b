"""The time budget: the worst case of one call follows from the retry settings, and the deadline keeps room for it."""

from __future__ import annotations

import pytest
from botocore.config import Config


def test_the_worst_call_is_every_attempt_timing_out_plus_every_maximal_backoff(budget):
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=2)
    # 3 attempts of (1 + 2) s; before retry 1: up to 1 s (+5 s retry-after), before retry 2: up to 2 s (+5 s).
    assert budget.worst_call_seconds(config) == 3 * 3 + (1 + 5) + (2 + 5)


def test_backoff_is_capped_at_twenty_seconds(budget):
    config = Config(retries={"mode": "standard", "total_max_attempts": 8}, connect_timeout=0, read_timeout=0)
    assert budget.worst_call_seconds(config) == sum(min(2 ** i, 20) + 5 for i in range(7))


def test_the_lifecycle_reserve_covers_a_call_in_flight_a_waiter_pause_and_the_completion(budget):
    assert budget.LIFECYCLE_RESERVE >= 2 * budget.worst_call_seconds() + budget.WAITER_DELAY
    assert budget.RECONCILE_RESERVE >= budget.LIFECYCLE_RESERVE + budget.RESPONSE_TIMEOUT


def test_the_deadline_refuses_a_call_that_would_eat_into_the_reserve(budget):
    deadline = budget.Deadline(lambda: 10.0, reserve=11.0)
    with pytest.raises(budget.DeadlineReached, match="10s left"):
        deadline.check()
    budget.Deadline(lambda: 12.0, reserve=11.0).check()


def test_without_a_lambda_context_there_is_no_deadline(budget):
    budget.Deadline.from_context(None, reserve=1e9).check()
