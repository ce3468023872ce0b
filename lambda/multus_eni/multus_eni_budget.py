"""The handler's time budget: boto3 retries it can bound, and a deadline that keeps room for the last word.

A lifecycle action must always be completed (CONTINUE or ABANDON) before the Lambda
times out, or the node waits for the hook's heartbeat and gets its default result.
So the clients retry in botocore's *standard* mode (bounded attempts, exponential
backoff with a documented ceiling; *adaptive* mode adds a client-side rate limiter
whose waits have no bound), with explicit connect/read timeouts, and a
``Deadline`` refuses to START an EC2 call unless the worst case of that call, one
waiter pause and the final Auto Scaling call (or CloudFormation response) still
fit in the time Lambda has left. What the invocation could not finish then ends in
the failure path, which sends its answer in the time kept for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.config import Config

TOTAL_ATTEMPTS = 4  # the first try and three retries
CONNECT_TIMEOUT = 2.0  # seconds, per attempt
READ_TIMEOUT = 5.0  # seconds without a byte from the endpoint, per attempt
WAITER_DELAY = 2  # seconds between two polls of a boto3 waiter (detach -> available)
RESPONSE_TIMEOUT = 10.0  # seconds for the PUT of a CloudFormation custom resource response
MARGIN = 1.0  # seconds for the handler's own work between calls

BOTO_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
)

# botocore's standard mode (botocore.retries.standard.ExponentialBackoff): before retry i (1-based) it waits
# rand(0, 1) * min(base * 2 ** (i - 1), 20) with base 1 s for throttling errors, raised to an
# ``x-amz-retry-after`` header but never more than 5 s above that.
_MAX_BACKOFF = 20.0
_RETRY_AFTER_EXTRA = 5.0


def worst_call_seconds(config: Config = BOTO_CONFIG) -> float:
    """The longest one API call can take with ``config``: every attempt times out, every backoff is maximal."""
    attempts = config.retries["total_max_attempts"]
    per_attempt = config.connect_timeout + config.read_timeout
    backoff = sum(min(2.0 ** (i - 1), _MAX_BACKOFF) + _RETRY_AFTER_EXTRA for i in range(1, attempts))
    return attempts * per_attempt + backoff


# Time kept for what must still happen after the last EC2 call started: that call, one waiter pause, then the
# answer (CompleteLifecycleAction / SetInstanceHealth through the same config, or the CloudFormation PUT).
LIFECYCLE_RESERVE = worst_call_seconds() + WAITER_DELAY + worst_call_seconds() + MARGIN
RECONCILE_RESERVE = worst_call_seconds() + WAITER_DELAY + worst_call_seconds() + RESPONSE_TIMEOUT + MARGIN


class DeadlineReached(RuntimeError):
    """Starting another EC2 call could leave no time to complete the lifecycle action."""


class Deadline:
    """Refuses to start a call when fewer than ``reserve`` seconds would be left (registered on a client's
    ``before-parameter-build`` event, the first of each call, so every call, waiter polls included, is checked)."""

    def __init__(self, remaining_seconds: Callable[[], float], reserve: float) -> None:
        self.remaining_seconds = remaining_seconds
        self.reserve = reserve

    @classmethod
    def from_context(cls, context, reserve: float) -> Deadline:
        """From a Lambda context (``get_remaining_time_in_millis``); without one (local runs), no deadline."""
        if context is None or not hasattr(context, "get_remaining_time_in_millis"):
            return cls(lambda: float("inf"), reserve)
        return cls(lambda: context.get_remaining_time_in_millis() / 1000.0, reserve)

    @classmethod
    def after(cls, seconds: float, reserve: float) -> Deadline:
        """A deadline ``seconds`` from now (tests and benchmarks)."""
        end = time.monotonic() + seconds
        return cls(lambda: end - time.monotonic(), reserve)

    def check(self, model=None, **_) -> None:
        left = self.remaining_seconds()
        if left < self.reserve:
            name = getattr(model, "name", "call")
            raise DeadlineReached(f"{left:.0f}s left, {self.reserve:.0f}s kept for the answer: {name} not started")

    def guard(self, client) -> None:
        """Check the deadline before every call of ``client``."""
        client.meta.events.register(f"before-parameter-build.{client.meta.service_model.service_name}.*", self.check)
