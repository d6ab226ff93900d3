"""Prometheus exposition of alerting: firing alerts, notification outcomes, and the outbox backlog."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class AlertingSnapshot:
    """What the alerting metrics show at one moment."""

    firing: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (monitor, alertname, severity)
    notifications: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (sink, outcome) -> count
    outbox_pending: int = 0
    outbox_dead: int = 0


class AlertingCollector(Collector):
    """`driftwatch_alerts_firing`, `driftwatch_notifications_total`, `driftwatch_outbox_pending`, `..._dead_letters`."""

    def __init__(self, snapshot: Callable[[], AlertingSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        firing = GaugeMetricFamily(
            "driftwatch_alerts_firing", "Alerts currently firing.", labels=["monitor", "alertname", "severity"]
        )
        for (monitor, alertname, severity), count in sorted(snap.firing.items()):
            firing.add_metric([monitor, alertname, severity], count)
        sent = CounterMetricFamily(
            "driftwatch_notifications_total",
            "Notification delivery attempts by sink and outcome (delivered, retry, dead).",
            labels=["sink", "outcome"],
        )
        for (sink, outcome), count in sorted(snap.notifications.items()):
            sent.add_metric([sink, outcome], count)
        yield firing
        yield sent
        yield GaugeMetricFamily(
            "driftwatch_outbox_pending", "Notifications waiting for delivery.", value=snap.outbox_pending
        )
        yield GaugeMetricFamily(
            "driftwatch_outbox_dead_letters",
            "Notifications given up on (replay with `driftwatch alerts retry`).",
            value=snap.outbox_dead,
        )


class OutcomeCounter:
    """Counts of (sink, outcome) for `driftwatch_notifications_total`; called from the dispatcher thread."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, sink: str, outcome: str) -> None:
        with self._lock:
            self._counts[(sink, outcome)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)
