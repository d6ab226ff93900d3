"""The dispatcher: delivers the durable outbox to the sinks, with backoff, jitter and dead letters.

Rows are written by `Store.apply_alert_changes` in the same transaction as the alert state change that decided
them. The dispatcher only marks a row delivered after the sink accepted it (2xx), so a crash or restart
mid-delivery re-sends (with the same `delivery_id`, i.e. the same `webhook-id`) rather than loses: delivery is
at least once per id, and exactly once whenever the receiver deduplicates by that id.

Per attempt: success -> delivered; retryable failure -> retry after `uniform(0, min(max_interval,
initial * 2**attempts))` (full jitter), but never sooner than the sink's `Retry-After`; a row whose age exceeds
`max_age` after a failed attempt -> dead; a non-retryable failure -> dead at once. A row whose sink is not
configured (removed by a reload) waits like a retryable failure, so re-adding the sink delivers it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from driftwatch.errors import DeliveryError
from driftwatch.outputs.notifiers.base import Notifier
from driftwatch.runtime.store import Delivery, Store

log = logging.getLogger("driftwatch.outbox")

DELIVERED, RETRY, DEAD = "delivered", "retry", "dead"


@dataclass(frozen=True)
class RetryPolicy:
    """How one sink retries: backoff from `initial` doubling up to `max_interval`, giving up after `max_age`."""

    initial: timedelta = timedelta(seconds=2)
    max_interval: timedelta = timedelta(minutes=10)
    max_age: timedelta = timedelta(hours=24)

    def backoff_ceiling(self, attempts: int) -> float:
        """Seconds: the upper bound of the jittered wait after `attempts + 1` failed attempts."""
        ceiling = self.initial.total_seconds() * 2.0 ** min(max(attempts, 0), 64)
        return min(self.max_interval.total_seconds(), ceiling)


DEFAULT_POLICY = RetryPolicy()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Deliver due outbox rows to `notifiers` (by sink name) in a background thread, or synchronously."""

    def __init__(
        self, store: Store, notifiers: Mapping[str, Notifier], *, retry: Mapping[str, RetryPolicy] | None = None,
        default_retry: RetryPolicy = DEFAULT_POLICY, clock: Callable[[], datetime] = _utcnow,
        on_outcome: Callable[[str, str], None] | None = None, poll_interval: float = 1.0, batch: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._notifiers = dict(notifiers)
        self._retry = dict(retry or {})
        self._default_retry = default_retry
        self._clock = clock
        self._on_outcome = on_outcome
        self._poll_interval = poll_interval
        self._batch = batch
        self._random = rng or random.Random()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- configuration ---------------------------------------------------------------------------------------

    def update(self, notifiers: Mapping[str, Notifier], retry: Mapping[str, RetryPolicy] | None = None) -> None:
        """Swap the sinks (and policies) after a config reload; rows of removed sinks wait for their return."""
        self._notifiers = dict(notifiers)
        self._retry = dict(retry or {})
        self.wake()

    def policy(self, sink: str) -> RetryPolicy:
        """The retry policy of `sink`."""
        return self._retry.get(sink, self._default_retry)

    # --- delivering ------------------------------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> int:
        """Attempt every row due at `now` (default: the clock), up to one batch; return how many were attempted."""
        moment = now or self._clock()
        attempted = 0
        for delivery in self._store.due_deliveries(moment, self._batch):
            if self._stopping.is_set():
                break
            self._attempt(delivery, now or self._clock())
            attempted += 1
        return attempted

    def _attempt(self, delivery: Delivery, now: datetime) -> None:
        notifier = self._notifiers.get(delivery.sink)
        if notifier is None:
            self._fail(delivery, now, f"sink {delivery.sink!r} is not configured", retryable=True, retry_after=None)
            return
        try:
            notifier.send(delivery.event, delivery.delivery_id)
        except DeliveryError as err:
            retryable = bool(getattr(err, "retryable", False))
            retry_after = getattr(err, "retry_after", None)
            self._fail(delivery, now, str(err), retryable=retryable, retry_after=retry_after)
            return
        except Exception as err:
            # A bug in a notifier (e.g. an event it cannot format): retrying the same code cannot help.
            log.exception("sink %r crashed on delivery %s", delivery.sink, delivery.delivery_id)
            self._fail(delivery, now, f"{type(err).__name__} in sink {delivery.sink!r}", retryable=False,
                       retry_after=None)
            return
        self._store.mark_delivered(delivery.id, self._clock())
        log.log(logging.INFO if delivery.attempts else logging.DEBUG, "delivered %s to sink %r after %d attempt(s)",
                delivery.delivery_id, delivery.sink, delivery.attempts + 1)
        self._report(delivery.sink, DELIVERED)

    def _fail(
        self, delivery: Delivery, now: datetime, error: str, *, retryable: bool, retry_after: float | None,
    ) -> None:
        policy = self.policy(delivery.sink)
        expired = now - delivery.age_from >= policy.max_age
        if not retryable or expired:
            why = error if not retryable else f"gave up after {delivery.attempts + 1} attempt(s): {error}"
            self._store.mark_dead(delivery.id, why)
            log.warning("dead letter %s for sink %r: %s", delivery.delivery_id, delivery.sink, why)
            self._report(delivery.sink, DEAD)
            return
        wait = self._random.uniform(0.0, policy.backoff_ceiling(delivery.attempts))
        if retry_after is not None:
            wait = max(wait, retry_after)
        next_attempt = now + timedelta(seconds=wait)
        self._store.mark_retry(delivery.id, next_attempt, error)
        log.info("delivery %s to sink %r failed (attempt %d), next at %s: %s", delivery.delivery_id, delivery.sink,
                 delivery.attempts + 1, next_attempt.isoformat(timespec="seconds"), error)
        self._report(delivery.sink, RETRY)

    def _report(self, sink: str, outcome: str) -> None:
        if self._on_outcome is not None:
            try:
                self._on_outcome(sink, outcome)
            except Exception:
                log.exception("on_outcome callback failed")

    # --- the thread ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="driftwatch-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for due rows now (e.g. right after enqueuing) instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop after the attempt in flight; True if the thread ended within `timeout`."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    @property
    def running(self) -> bool:
        """True while the delivery thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                attempted = self.deliver_due()
            except Exception:
                log.exception("outbox delivery loop failed; retrying in %.1fs", self._poll_interval)
                attempted = 0
            if attempted >= self._batch:
                continue  # a full batch: more may be due right away
            self._wake.wait(self._poll_interval)
