"""Console sink: log each notification (the demo's default)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from driftwatch.outputs.notifiers.base import dumps, report_link, summary

log = logging.getLogger("driftwatch.alerts")


class LogNotifier:
    """Log one readable line per notification (WARNING while firing, INFO when resolved); never fails."""

    kind = "log"
    wants_refresh = False

    def __init__(self, name: str = "console", *, logger: logging.Logger | None = None) -> None:
        self.name = name
        self._log = logger or log

    def __repr__(self) -> str:
        return f"LogNotifier({self.name!r})"

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        """Log the summary; the full event travels as the `notification` extra field (JSON log format)."""
        level = logging.INFO if event.get("status") == "resolved" else logging.WARNING
        link = report_link(event)
        self._log.log(
            level,
            "alert %s%s",
            summary(event),
            f" · {link}" if link else "",
            extra={"sink": self.name, "delivery_id": delivery_id, "notification": dumps(dict(event)).decode("utf-8")},
        )
