"""PagerDuty Events API v2 sink: trigger while firing, resolve when over, one deterministic `dedup_key`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftwatch.outputs.notifiers.base import describe, dumps, post, report_link, summary

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"


def dedup_key(event: Mapping[str, Any]) -> str:
    """`driftwatch/<monitor>/<subject>/<alertname>/<started_at>`: the same for an alert's trigger and resolve."""
    subject = event.get("subject") or event.get("feature") or "dataset"
    return f"driftwatch/{event.get('monitor')}/{subject}/{event.get('alertname')}/{event.get('started_at')}"


def pagerduty_event(event: Mapping[str, Any], routing_key: str) -> dict[str, Any]:
    """The Events API v2 body of one notification."""
    key = dedup_key(event)
    if event.get("status") == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    severity = "critical" if event.get("severity") == "critical" else "warning"
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": summary(event)[:1024],
            "source": "driftwatch",
            "severity": severity,
            "component": event.get("monitor"),
            "group": event.get("alertname"),
            "custom_details": event.get("details") or {},
        },
    }
    if event.get("at"):
        body["payload"]["timestamp"] = event["at"]
    link = report_link(event)
    if link:
        body["links"] = [{"href": link, "text": "driftwatch report"}]
    return body


class PagerDutyNotifier:
    """Send trigger/resolve events; PagerDuty deduplicates re-sent triggers by `dedup_key`."""

    kind = "pagerduty"
    wants_refresh = False

    def __init__(self, name: str, routing_key: str, url: str = DEFAULT_URL, timeout: float = 10.0) -> None:
        self.name = name
        self._routing_key = routing_key
        self._url = url
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PagerDutyNotifier({describe(self.kind, self.name, self._url)})"

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        """POST one event (PagerDuty answers 202)."""
        post(
            describe(self.kind, self.name, self._url),
            self._url,
            dumps(pagerduty_event(event, self._routing_key)),
            timeout=self.timeout,
            secrets=[self._routing_key],
        )
