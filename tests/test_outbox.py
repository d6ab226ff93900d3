"""The outbox dispatcher against real loopback receivers: retries, backoff, dead letters, restarts."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from receivers import Receiver, sample_event

from driftwatch.outputs.notifiers import Notifier, WebhookNotifier
from driftwatch.outputs.outbox import Dispatcher, RetryPolicy
from driftwatch.runtime.store import Store

SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLW91dGJveC10ZXN0cw=="
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move forward and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


class MaxJitter(random.Random):
    """'Random' jitter that always waits the full backoff ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Outcomes:
    """Records on_outcome calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, sink: str, outcome: str) -> None:
        with self._lock:
            self.calls.append((sink, outcome))

    def count(self, outcome: str) -> int:
        """How many calls had `outcome`."""
        with self._lock:
            return sum(1 for _, seen in self.calls if seen == outcome)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh state store."""
    with Store(tmp_path / "driftwatch.db") as opened:
        yield opened


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running loopback receiver that verifies signatures with SECRET."""
    with Receiver(secret=SECRET) as running:
        yield running


def enqueue(store: Store, *ids: str, sink: str = "oncall", now: datetime = T0) -> None:
    """Put one notification per id into the outbox."""
    store.apply_alert_changes({}, [(i, sink, sample_event(notification_id=i)) for i in ids], now)


def dispatcher(
    store: Store,
    receiver: Receiver,
    clock: Callable[[], datetime],
    *,
    policy: RetryPolicy | None = None,
    outcomes: Outcomes | None = None,
    **options: Any,
) -> Dispatcher:
    """A dispatcher with one signed webhook sink `oncall` posting to `receiver`."""
    notifiers: Mapping[str, Notifier] = {"oncall": WebhookNotifier("oncall", receiver.url + "/hook", SECRET, 2.0)}
    return Dispatcher(
        store, notifiers, retry={"oncall": policy or RetryPolicy()}, clock=clock, on_outcome=outcomes, **options
    )


def test_failing_receiver_gets_one_delivery_with_a_stable_webhook_id(store: Store, receiver: Receiver) -> None:
    """Three 503s, then success: four attempts with the same verified webhook-id, exactly one 2xx."""
    clock, outcomes = FixedClock(), Outcomes()
    receiver.fail(3, 503)
    enqueue(store, "dlv-1")
    sender = dispatcher(store, receiver, clock, outcomes=outcomes, rng=MaxJitter())
    waits = []
    for _ in range(4):
        assert sender.deliver_due() == 1
        assert sender.deliver_due() == 0  # not due again before its backoff
        pending = store.deliveries(status="pending")
        if pending:
            waits.append((pending[0].next_attempt_at - clock.now).total_seconds())
            clock.now = pending[0].next_attempt_at
    assert waits == [2.0, 4.0, 8.0]
    assert [outcome for _, outcome in outcomes.calls] == ["retry", "retry", "retry", "delivered"]
    assert [request.headers["webhook-id"] for request in receiver.requests] == ["dlv-1"] * 4
    assert all(request.verified for request in receiver.requests)
    assert receiver.accepted_ids() == Counter({"dlv-1": 1})
    (done,) = store.deliveries()
    assert (done.status, done.attempts, done.delivered_at) == ("delivered", 4, clock.now)
    assert store.outbox_counts() == {"pending": 0, "dead": 0}


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [
        pytest.param(0, 2.0, id="first-retry-initial"),
        pytest.param(3, 16.0, id="doubling"),
        pytest.param(8, 512.0, id="below-cap"),
        pytest.param(9, 600.0, id="capped-at-max-interval"),
        pytest.param(500, 600.0, id="huge-attempts-no-overflow"),
    ],
)
def test_backoff_ceiling(attempts: int, ceiling: float) -> None:
    """The jitter ceiling is min(max_interval, initial * 2**attempts)."""
    assert RetryPolicy().backoff_ceiling(attempts) == ceiling


def test_full_jitter_stays_within_the_ceiling(store: Store, receiver: Receiver) -> None:
    """With real randomness each wait lies in [0, ceiling]."""
    clock = FixedClock()
    receiver.fail(6, 503)
    enqueue(store, "dlv-1")
    sender = dispatcher(store, receiver, clock, rng=random.Random(7))
    waits = []
    for attempt in range(6):
        sender.deliver_due()
        (row,) = store.deliveries(status="pending")
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        assert 0 <= waits[-1] <= 2.0 * 2**attempt
        clock.now = row.next_attempt_at
    assert len(set(waits)) == 6  # jittered, not fixed


def test_client_error_goes_to_dead_letters_and_can_be_replayed(store: Store, receiver: Receiver) -> None:
    """A 400 is dead at once; retry_dead puts it back and it is then delivered once."""
    clock, outcomes = FixedClock(), Outcomes()
    receiver.fail(1, 400)
    enqueue(store, "dlv-1")
    sender = dispatcher(store, receiver, clock, outcomes=outcomes)
    sender.deliver_due()
    (dead,) = store.deliveries()
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert "HTTP 400" in (dead.last_error or "")
    assert store.outbox_counts() == {"pending": 0, "dead": 1}
    assert outcomes.calls == [("oncall", "dead")]
    clock.advance(3600)
    assert sender.deliver_due() == 0
    assert store.retry_dead(sink="other-sink", now=clock.now) == 0
    assert store.retry_dead(sink="oncall", now=clock.now) == 1
    assert store.outbox_counts() == {"pending": 1, "dead": 0}
    assert sender.deliver_due() == 1
    assert store.deliveries()[0].status == "delivered"
    assert receiver.accepted_ids() == Counter({"dlv-1": 1})
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("retry_after", [pytest.param(120, id="120s"), pytest.param(1, id="1s-below-backoff")])
def test_retry_after_is_honoured(store: Store, receiver: Receiver, retry_after: int) -> None:
    """A 429 with Retry-After waits at least that long (and at least the jittered backoff)."""
    clock = FixedClock()
    receiver.fail(1, 429, retry_after=str(retry_after))
    enqueue(store, "dlv-1")
    sender = dispatcher(store, receiver, clock, rng=MaxJitter())
    sender.deliver_due()
    (row,) = store.deliveries(status="pending")
    assert row.next_attempt_at == T0 + timedelta(seconds=max(retry_after, 2))
    assert row.next_attempt_at >= clock.now + timedelta(seconds=retry_after)
    clock.now = row.next_attempt_at - timedelta(microseconds=1)
    assert sender.deliver_due() == 0
    clock.now = row.next_attempt_at
    assert sender.deliver_due() == 1
    assert receiver.accepted_ids() == Counter({"dlv-1": 1})


def test_receiver_down_keeps_rows_pending_until_max_age(store: Store) -> None:
    """While the receiver is down rows stay pending; past max_age they become dead letters, replayable later."""
    clock, outcomes = FixedClock(), Outcomes()
    receiver = Receiver(secret=SECRET).start()
    receiver.stop()  # down, but the port is known
    enqueue(store, "dlv-1", "dlv-2")
    policy = RetryPolicy(
        initial=timedelta(seconds=10), max_interval=timedelta(minutes=1), max_age=timedelta(minutes=10)
    )
    sender = dispatcher(store, receiver, clock, policy=policy, outcomes=outcomes)
    while clock.now < T0 + timedelta(minutes=10):
        sender.deliver_due()
        assert store.outbox_counts() == {"pending": 2, "dead": 0}
        clock.advance(30)
    clock.advance(60)  # past every scheduled retry (max_interval)
    sender.deliver_due()
    assert store.outbox_counts() == {"pending": 0, "dead": 2}
    assert all("gave up" in (row.last_error or "") for row in store.deliveries())
    assert outcomes.count("dead") == 2 and outcomes.count("retry") >= 2
    with receiver:  # back on the same port
        assert store.retry_dead(now=clock.now) == 2
        sender.deliver_due()
    assert receiver.accepted_ids() == Counter({"dlv-1": 1, "dlv-2": 1})


def test_unconfigured_sink_waits_for_its_return(store: Store, receiver: Receiver) -> None:
    """A row for a sink removed by a reload is retried later, and delivered once the sink is back."""
    clock, outcomes = FixedClock(), Outcomes()
    enqueue(store, "dlv-1", sink="later")
    sender = dispatcher(store, receiver, clock, outcomes=outcomes)
    sender.deliver_due()
    (row,) = store.deliveries()
    assert row.status == "pending" and "not configured" in (row.last_error or "")
    assert outcomes.calls == [("later", "retry")]
    sender.update({"later": WebhookNotifier("later", receiver.url, SECRET, 2.0)})
    clock.advance(60)
    sender.deliver_due()
    assert store.deliveries()[0].status == "delivered"
    assert receiver.accepted_ids() == Counter({"dlv-1": 1})


def test_crashing_notifier_is_a_dead_letter(store: Store) -> None:
    """An unexpected exception in a notifier dead-letters the row instead of killing the loop."""

    class Broken:
        name, kind, wants_refresh = "broken", "webhook", False

        def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
            raise KeyError("details")

    enqueue(store, "dlv-1", sink="broken")
    Dispatcher(store, {"broken": Broken()}, clock=FixedClock()).deliver_due()
    (row,) = store.deliveries()
    assert (row.status, row.last_error) == ("dead", "KeyError in sink 'broken'")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


def test_restart_mid_delivery_delivers_the_rest_exactly_once(tmp_path: Path) -> None:
    """Dispatcher stopped mid-way (receiver then down), a new one on the same file delivers every id exactly once."""
    path = tmp_path / "driftwatch.db"
    ids = [f"dlv-{n:02d}" for n in range(20)]
    quick = RetryPolicy(initial=timedelta(milliseconds=10), max_interval=timedelta(milliseconds=50))
    receiver = Receiver(secret=SECRET, delay=0.01).start()
    first_outcomes = Outcomes()
    with Store(path) as store:
        enqueue(store, *ids, now=datetime.now(UTC))
        first = dispatcher(store, receiver, lambda: datetime.now(UTC), policy=quick, outcomes=first_outcomes)
        first.start()
        wait_until(lambda: len(receiver.accepted()) >= 5)
        receiver.stop()  # the receiver goes down while the first dispatcher is still running
        wait_until(lambda: first_outcomes.count("retry") >= 3)
        assert first.stop(timeout=5)
        assert not first.running
        assert store.outbox_counts()["pending"] > 0
    delivered_before = len(receiver.accepted())
    assert 5 <= delivered_before < 20
    with receiver, Store(path) as reopened:  # the receiver is back on the same port; a new daemon starts
        second = dispatcher(reopened, receiver, lambda: datetime.now(UTC), policy=quick)
        second.start()
        wait_until(lambda: reopened.outbox_counts() == {"pending": 0, "dead": 0})
        assert second.stop(timeout=5)
        assert {row.status for row in reopened.deliveries(limit=100)} == {"delivered"}
    assert receiver.accepted_ids() == Counter(dict.fromkeys(ids, 1))
    assert all(request.verified for request in receiver.requests)


def test_wake_delivers_without_waiting_for_the_poll(store: Store, receiver: Receiver) -> None:
    """A started dispatcher with a long poll interval delivers a new row as soon as it is woken."""
    sender = dispatcher(store, receiver, lambda: datetime.now(UTC), poll_interval=60.0)
    sender.start()
    try:
        wait_until(lambda: sender.running)
        time.sleep(0.05)  # let the first (empty) pass finish and start waiting
        enqueue(store, "dlv-1", now=datetime.now(UTC))
        sender.wake()
        wait_until(lambda: len(receiver.accepted()) == 1, timeout=5)
    finally:
        assert sender.stop(timeout=5)
    assert store.outbox_counts() == {"pending": 0, "dead": 0}


def test_on_outcome_failure_does_not_stop_delivery(store: Store, receiver: Receiver) -> None:
    """A metrics callback that raises is logged, and the row is still marked delivered."""

    def explode(sink: str, outcome: str) -> None:
        raise RuntimeError("metrics down")

    enqueue(store, "dlv-1")
    Dispatcher(
        store, {"oncall": WebhookNotifier("oncall", receiver.url, SECRET, 2.0)}, clock=FixedClock(), on_outcome=explode
    ).deliver_due()
    assert store.deliveries()[0].status == "delivered"


# --- lanes: one per sink -----------------------------------------------------------------------------------------


class Recording:
    """A notifier that accepts everything and records the delivery ids it got."""

    kind, wants_refresh = "webhook", False

    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: list[str] = []

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        self.ids.append(delivery_id)


class Stuck(Recording):
    """A notifier whose send blocks until `release()` (a sink that accepts and never answers)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.entered = threading.Event()
        self._gate = threading.Event()

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        self.entered.set()
        self._gate.wait(30)
        super().send(event, delivery_id)

    def release(self) -> None:
        """Let every blocked and later send return."""
        self._gate.set()


def lane_names() -> set[str]:
    """Names of the live outbox lane threads."""
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("driftwatch-outbox-")}


def test_due_deliveries_of_one_sink_or_excluding_sinks(store: Store) -> None:
    """due_deliveries filters by `sink` and by `exclude`, oldest due first."""
    enqueue(store, "a-1", "a-2", sink="a")
    enqueue(store, "b-1", sink="b")
    enqueue(store, "c-1", sink="c")
    assert [row.delivery_id for row in store.due_deliveries(T0, sink="a")] == ["a-1", "a-2"]
    assert [row.delivery_id for row in store.due_deliveries(T0, exclude={"a", "b"})] == ["c-1"]
    assert [row.delivery_id for row in store.due_deliveries(T0, sink="a", limit=1)] == ["a-1"]
    assert len(store.due_deliveries(T0)) == 4
    assert store.due_deliveries(T0 - timedelta(seconds=1)) == []


def test_a_blocked_sink_does_not_delay_another_sink(store: Store) -> None:
    """While one sink's send hangs, another sink's rows (older and newer) are delivered by its own lane."""
    stuck, fast = Stuck("stuck"), Recording("fast")
    now = datetime.now(UTC)
    enqueue(store, "stuck-1", "stuck-2", sink="stuck", now=now - timedelta(seconds=1))  # due first
    enqueue(store, "fast-1", "fast-2", sink="fast", now=now)
    sender = Dispatcher(store, {"stuck": stuck, "fast": fast}, poll_interval=60.0)
    sender.start()
    try:
        assert stuck.entered.wait(5)
        wait_until(lambda: fast.ids == ["fast-1", "fast-2"], timeout=5)
        enqueue(store, "fast-3", sink="fast", now=datetime.now(UTC))
        sender.wake()
        wait_until(lambda: len(fast.ids) == 3, timeout=5)
        assert stuck.ids == []  # still blocked in its first send
        assert sender.lanes() == ["fast", "stuck"]
        stuck.release()
        wait_until(lambda: stuck.ids == ["stuck-1", "stuck-2"], timeout=5)
    finally:
        stuck.release()
        assert sender.stop(timeout=5)
    assert store.outbox_counts() == {"pending": 0, "dead": 0}


def test_stop_is_bounded_while_a_lane_is_blocked(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """stop() returns False in time and names the abandoned sink; the late answer is not recorded (re-sent later)."""
    stuck = Stuck("stuck")
    enqueue(store, "stuck-1", sink="stuck", now=datetime.now(UTC))
    sender = Dispatcher(store, {"stuck": stuck, "fast": Recording("fast")}, poll_interval=60.0)
    sender.start()
    assert stuck.entered.wait(5)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="driftwatch.outbox"):
        assert not sender.stop(timeout=0.3)
    assert time.monotonic() - started < 2
    assert not sender.running
    assert "abandoned 1 lane(s)" in caplog.text and "'stuck'" in caplog.text
    stuck.release()
    wait_until(lambda: "driftwatch-outbox-stuck" not in lane_names(), timeout=5)
    (row,) = store.deliveries()
    assert (row.status, row.attempts) == ("pending", 0)  # sent, but the answer came after shutdown gave up


def test_update_starts_and_retires_lanes(store: Store) -> None:
    """A reload adds a lane per new sink and retires removed ones; rows of a missing sink wait for its return."""
    first, second = Recording("first"), Recording("second")
    outcomes = Outcomes()
    sender = Dispatcher(
        store,
        {"first": first},
        poll_interval=0.05,
        on_outcome=outcomes,
        default_retry=RetryPolicy(initial=timedelta(milliseconds=10)),
    )
    before = lane_names()
    sender.start()
    try:
        assert sender.lanes() == ["first"]
        assert lane_names() - before == {"driftwatch-outbox-first", "driftwatch-outbox-unconfigured"}
        enqueue(store, "second-1", sink="second", now=datetime.now(UTC))
        wait_until(lambda: ("second", "retry") in outcomes.calls)  # the unconfigured lane keeps it waiting
        assert "not configured" in (store.deliveries()[0].last_error or "")
        sender.update({"first": first, "second": second})
        assert sender.lanes() == ["first", "second"]
        wait_until(lambda: second.ids == ["second-1"])
        sender.update({"second": second})
        assert sender.lanes() == ["second"]
        wait_until(lambda: "driftwatch-outbox-first" not in lane_names())
    finally:
        assert sender.stop(timeout=5)
    assert not lane_names() - before
    assert first.ids == [] and store.outbox_counts() == {"pending": 0, "dead": 0}
