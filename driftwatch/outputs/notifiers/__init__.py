"""Notification sinks behind one capability, `Notifier`: webhook, slack, pagerduty, alertmanager, log.

Every sink gets the same JSON-ready notification and a delivery id that is stable across retries:

    {"event": "alert.firing" | "alert.resolved", "notification_id": str, "alertname": str, "monitor": str,
     "subject": feature name | "dataset" | "monitor", "feature": str | null, "status": "firing" | "resolved",
     "severity": "warning" | "critical", "reason": str, "started_at": ISO time, "at": ISO time,
     "details": {"statistics": {...}, "thresholds": {...}, "window": {"start", "end"}},
     "links": {"report": url}}

`send` makes one attempt and raises a `DeliveryError` (`SinkUnavailable` or `SinkRejected`) with `retryable`,
`retry_after` and `status`; retries, backoff and dead letters belong to `driftwatch.outputs.outbox`.
"""

from __future__ import annotations

from driftwatch.outputs.notifiers.alertmanager import FIRING_TTL, AlertmanagerNotifier, alertmanager_alerts
from driftwatch.outputs.notifiers.base import (
    Notifier,
    parse_retry_after,
    redacted_host,
    summary,
)
from driftwatch.outputs.notifiers.log import LogNotifier
from driftwatch.outputs.notifiers.pagerduty import PagerDutyNotifier, dedup_key, pagerduty_event
from driftwatch.outputs.notifiers.slack import SlackNotifier, slack_message
from driftwatch.outputs.notifiers.webhook import WebhookNotifier

__all__ = [
    "FIRING_TTL",
    "AlertmanagerNotifier",
    "LogNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "alertmanager_alerts",
    "dedup_key",
    "pagerduty_event",
    "parse_retry_after",
    "redacted_host",
    "slack_message",
    "summary",
]
