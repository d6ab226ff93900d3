"""Alertmanager sink: POST alerts to `/api/v2/alerts`, re-posted on every run while firing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from driftwatch.outputs.notifiers.base import describe, dumps, parse_time, post, report_link, rfc3339, summary

#: While firing, `endsAt` is this far after the notification, so the alert stays active as long as driftwatch
#: re-posts it on every run and expires on its own if driftwatch stops.
FIRING_TTL = timedelta(minutes=15)


def alertmanager_alerts(event: Mapping[str, Any], *, ttl: timedelta = FIRING_TTL) -> list[dict[str, Any]]:
    """The `/api/v2/alerts` body (a list of one alert) of one notification."""
    at = parse_time(event["at"])
    resolved = event.get("status") == "resolved"
    description = str(event.get("reason") or summary(event))
    alert: dict[str, Any] = {
        "labels": {
            "alertname": str(event.get("alertname")),
            "monitor": str(event.get("monitor")),
            "feature": str(event.get("subject") or event.get("feature") or "dataset"),
            "severity": str(event.get("severity")),
        },
        "annotations": {"summary": summary(event), "description": description},
        "startsAt": rfc3339(parse_time(event.get("started_at") or event["at"])),
        "endsAt": rfc3339(at if resolved else at + ttl),
    }
    link = report_link(event)
    if link:
        alert["generatorURL"] = link
    return [alert]


class AlertmanagerNotifier:
    """Post alerts to Alertmanager (`url` is its base URL, e.g. http://127.0.0.1:9093)."""

    kind = "alertmanager"
    wants_refresh = True

    def __init__(self, name: str, url: str, timeout: float = 10.0, *, ttl: timedelta = FIRING_TTL) -> None:
        self.name = name
        self._url = url.rstrip("/") + "/api/v2/alerts"
        self.timeout = timeout
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier({describe(self.kind, self.name, self._url)})"

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        """POST the alert (Alertmanager answers 200)."""
        post(
            describe(self.kind, self.name, self._url),
            self._url,
            dumps(alertmanager_alerts(event, ttl=self.ttl)),
            timeout=self.timeout,
        )
