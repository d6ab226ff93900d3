"""The dispatcher: delivers the durable outbox to the sinks, one lane per sink, with backoff, jitter and dead letters.

Rows are written by `Store.apply_alert_changes` in the same transaction as the alert state change that decided
them. The dispatcher only marks a row delivered after the sink accepted it (2xx), so a crash or restart
mid-delivery re-sends (with the same `delivery_id`, i.e. the same `webhook-id`) rather than loses: delivery is
at least once per id, and exactly once whenever the receiver deduplicates by that id.

Per attempt: success -> delivered; retryable failure -> retry after `uniform(0, min(max_interval,
initial * 2**attempts))` (full jitter), but never sooner than the sink's `Retry-After`; a row whose age exceeds
`max_age` after a failed attempt -> dead; a non-retryable failure -> dead at once. A row whose sink is not
configured (removed by a reload) waits like a retryable failure, so re-adding the sink delivers it.

Each configured sink has its own lane (a daemon thread) that sends only that sink's rows, one at a time, so a sink
that never answers delays only itself; one more lane handles the rows of sinks that are not configured. `update`
creates and retires lanes as the sinks change; `stop` is bounded: a lane still blocked in a send when the time is up
is abandoned (logged), and whatever its send returns later is not recorded, so that row is sent again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from driftwatch.errors import DeliveryError
from driftwatch.outputs.deliveries import Delivery, OutboxStore
from driftwatch.outputs.notifiers.base import Notifier

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


@dataclass(frozen=True)
class _Failure:
    """Why an attempt failed, and whether trying again later may help."""

    error: str
    retryable: bool
    retry_after: float | None = None


@dataclass(eq=False)
class _Lane:
    """The delivery thread of one sink (`sink` None: the rows of every sink that is not configured)."""

    sink: str | None
    wake: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    abandoned: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def label(self) -> str:
        return repr(self.sink) if self.sink is not None else "(unconfigured sinks)"

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Dispatcher:
    """Deliver due outbox rows to `notifiers` (by sink name): one background lane per sink, or synchronously."""

    def __init__(
        self,
        store: OutboxStore,
        notifiers: Mapping[str, Notifier],
        *,
        retry: Mapping[str, RetryPolicy] | None = None,
        default_retry: RetryPolicy = DEFAULT_POLICY,
        clock: Callable[[], datetime] = _utcnow,
        on_outcome: Callable[[str, str], None] | None = None,
        poll_interval: float = 1.0,
        batch: int = 100,
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
        self._lock = threading.Lock()  # guards the lanes, the rows in flight and `_started`
        self._lanes: dict[str | None, _Lane] = {}
        self._retired: list[_Lane] = []  # lanes of removed sinks, possibly still finishing a send
        self._in_flight: set[int] = set()
        self._started = False

    # --- configuration ---------------------------------------------------------------------------------------

    def update(self, notifiers: Mapping[str, Notifier], retry: Mapping[str, RetryPolicy] | None = None) -> None:
        """Swap the sinks (and policies) after a config reload: new sinks get a lane, removed ones lose theirs."""
        with self._lock:
            self._notifiers = dict(notifiers)
            self._retry = dict(retry or {})
            if self._started:
                self._sync_lanes()
        self.wake()

    def policy(self, sink: str) -> RetryPolicy:
        """The retry policy of `sink`."""
        return self._retry.get(sink, self._default_retry)

    def lanes(self) -> list[str]:
        """The sinks that have a running lane, sorted."""
        with self._lock:
            return sorted(sink for sink, lane in self._lanes.items() if sink is not None and lane.alive)

    # --- delivering ------------------------------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> int:
        """Attempt every row due at `now` (default: the clock), of every sink, up to one batch, in this thread.

        Returns how many were attempted (rows a lane is sending at the same time are skipped).
        """
        return self._deliver(self._store.due_deliveries(now or self._clock(), self._batch), now, None)

    def _deliver_lane(self, lane: _Lane) -> int:
        now = self._clock()
        if lane.sink is not None:
            rows = self._store.due_deliveries(now, self._batch, sink=lane.sink)
        else:
            rows = self._store.due_deliveries(now, self._batch, exclude=set(self._notifiers))
        return self._deliver(rows, None, lane)

    def _deliver(self, rows: list[Delivery], now: datetime | None, lane: _Lane | None) -> int:
        attempted = 0
        for delivery in rows:
            if lane is not None and lane.stopping.is_set():
                break
            if lane is not None and lane.sink is None and delivery.sink in self._notifiers:
                continue  # configured since the query: its own lane sends it
            with self._lock:
                if delivery.id in self._in_flight:
                    continue
                self._in_flight.add(delivery.id)
            try:
                self._attempt(delivery, now or self._clock(), lane)
            finally:
                with self._lock:
                    self._in_flight.discard(delivery.id)
            attempted += 1
        return attempted

    def _attempt(self, delivery: Delivery, now: datetime, lane: _Lane | None) -> None:
        failure = self._send(delivery)
        if lane is not None and lane.abandoned.is_set():
            log.warning(
                "sink %r answered delivery %s after shutdown abandoned its lane; it stays pending",
                delivery.sink,
                delivery.delivery_id,
            )
            return
        if failure is not None:
            self._fail(delivery, now, failure)
            return
        self._store.mark_delivered(delivery.id, self._clock())
        log.log(
            logging.INFO if delivery.attempts else logging.DEBUG,
            "delivered %s to sink %r after %d attempt(s)",
            delivery.delivery_id,
            delivery.sink,
            delivery.attempts + 1,
        )
        self._report(delivery.sink, DELIVERED)

    def _send(self, delivery: Delivery) -> _Failure | None:
        """One attempt: None when the sink accepted it."""
        notifier = self._notifiers.get(delivery.sink)
        if notifier is None:
            return _Failure(f"sink {delivery.sink!r} is not configured", retryable=True)
        try:
            notifier.send(delivery.event, delivery.delivery_id)
        except DeliveryError as err:
            return _Failure(str(err), err.retryable, err.retry_after)
        except Exception as err:
            # A bug in a notifier (e.g. an event it cannot format): retrying the same code cannot help.
            log.exception("sink %r crashed on delivery %s", delivery.sink, delivery.delivery_id)
            return _Failure(f"{type(err).__name__} in sink {delivery.sink!r}", retryable=False)
        return None

    def _fail(self, delivery: Delivery, now: datetime, failure: _Failure) -> None:
        policy = self.policy(delivery.sink)
        expired = now - delivery.age_from >= policy.max_age
        if not failure.retryable or expired:
            why = (
                failure.error
                if not failure.retryable
                else (f"gave up after {delivery.attempts + 1} attempt(s): {failure.error}")
            )
            self._store.mark_dead(delivery.id, why)
            log.warning("dead letter %s for sink %r: %s", delivery.delivery_id, delivery.sink, why)
            self._report(delivery.sink, DEAD)
            return
        wait = self._random.uniform(0.0, policy.backoff_ceiling(delivery.attempts))
        if failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        next_attempt = now + timedelta(seconds=wait)
        self._store.mark_retry(delivery.id, next_attempt, failure.error)
        log.info(
            "delivery %s to sink %r failed (attempt %d), next at %s: %s",
            delivery.delivery_id,
            delivery.sink,
            delivery.attempts + 1,
            next_attempt.isoformat(timespec="seconds"),
            failure.error,
        )
        self._report(delivery.sink, RETRY)

    def _report(self, sink: str, outcome: str) -> None:
        if self._on_outcome is not None:
            try:
                self._on_outcome(sink, outcome)
            except Exception:
                log.exception("on_outcome callback failed")

    # --- the lanes -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start one lane per configured sink, and one for the rows of unconfigured sinks (idempotent)."""
        with self._lock:
            if not self._started:
                self._started = True
                self._sync_lanes()

    def wake(self) -> None:
        """Look for due rows now (e.g. right after enqueuing) instead of at the next poll."""
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.wake.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop every lane after its attempt in flight; False if some lane was still sending after `timeout`.

        Such a lane (a daemon thread) is abandoned and logged: what its send returns is not recorded.
        """
        with self._lock:
            self._started = False
            lanes = [*self._lanes.values(), *self._retired]
            self._lanes, self._retired = {}, []
        for lane in lanes:
            lane.stopping.set()
            lane.wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        stuck = []
        for lane in lanes:
            if lane.thread is not None:
                lane.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if lane.alive:
                lane.abandoned.set()
                stuck.append(lane.label)
        if stuck:
            log.warning(
                "outbox: abandoned %d lane(s) still blocked in a send after %gs: sink %s; their rows stay"
                " pending and are sent again later",
                len(stuck),
                timeout or 0,
                ", ".join(stuck),
            )
        return not stuck

    @property
    def running(self) -> bool:
        """True while the lanes run (between `start` and `stop`)."""
        with self._lock:
            return any(lane.alive for lane in self._lanes.values())

    def _sync_lanes(self) -> None:
        """Under the lock: start a lane for each new sink, retire the lanes of removed ones."""
        wanted: set[str | None] = {*self._notifiers, None}
        for sink in [sink for sink in self._lanes if sink not in wanted]:
            lane = self._lanes.pop(sink)
            lane.stopping.set()
            lane.wake.set()
            self._retired.append(lane)
            log.info("outbox lane for sink %s retired", lane.label)
        self._retired = [lane for lane in self._retired if lane.alive]
        for sink in wanted - self._lanes.keys():
            lane = _Lane(sink)
            name = f"driftwatch-outbox-{sink}" if sink is not None else "driftwatch-outbox-unconfigured"
            lane.thread = threading.Thread(target=self._run_lane, args=(lane,), name=name, daemon=True)
            self._lanes[sink] = lane
            lane.thread.start()

    def _run_lane(self, lane: _Lane) -> None:
        while not lane.stopping.is_set():
            lane.wake.clear()
            try:
                attempted = self._deliver_lane(lane)
            except Exception:
                if lane.abandoned.is_set():
                    return  # the store may be closed by now
                log.exception("outbox lane for sink %s failed; retrying in %.1fs", lane.label, self._poll_interval)
                attempted = 0
            if attempted >= self._batch:
                continue  # a full batch: more may be due right away
            lane.wake.wait(self._poll_interval)
