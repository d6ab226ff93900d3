"""Slack incoming-webhook sink: one readable line of text plus Block Kit blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftwatch.outputs.notifiers.base import (
    describe,
    dumps,
    post,
    report_link,
    summary,
    target,
    top_statistics,
    window_text,
)

_EMOJI = {("firing", "critical"): ":red_circle:", ("firing", "warning"): ":large_orange_circle:"}
_RESOLVED = ":white_check_mark:"


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """The Slack body `{"text", "blocks"}` of one notification."""
    status = str(event.get("status", "firing"))
    severity = str(event.get("severity", "warning"))
    emoji = _RESOLVED if status == "resolved" else _EMOJI.get((status, severity), ":warning:")
    lines = [
        f"{emoji} *{status.upper()}* `{event.get('alertname', 'Alert')}` on *{target(event)}*",
        f"*Severity:* {severity}",
    ]
    statistics = top_statistics(event)
    if statistics:
        lines.append("*Statistics:* " + ", ".join(statistics))
    elif event.get("reason"):
        lines.append(f"*Reason:* {event['reason']}")
    window = window_text(event)
    if window:
        lines.append(f"*Window:* {window}")
    link = report_link(event)
    context = f"<{link}|Drift report>" if link else "driftwatch"
    if event.get("started_at"):
        context += f" · since {event['started_at']}"
    return {
        "text": f"{emoji} {summary(event)}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


class SlackNotifier:
    """POST a readable message to a Slack incoming webhook (the URL itself is the secret)."""

    kind = "slack"
    wants_refresh = False

    def __init__(self, name: str, url: str, timeout: float = 10.0) -> None:
        self.name = name
        self._url = url
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SlackNotifier({describe(self.kind, self.name, self._url)})"

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        """POST the message; Slack answers 200 `ok`, or 4xx for a bad or revoked webhook."""
        post(describe(self.kind, self.name, self._url), self._url, dumps(slack_message(event)), timeout=self.timeout)
