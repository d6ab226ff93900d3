"""What every sink shares: the `Notifier` capability, delivery errors, one HTTP POST, and readable summaries.

A notifier turns one JSON-ready notification (see `driftwatch.outputs.notifiers` for its fields) into one
request. It never retries: it raises a `DeliveryError` (`SinkUnavailable` or `SinkRejected`, from
`driftwatch.errors`) with `retryable`, `retry_after` and `status`, and the outbox decides. Messages name the sink
and its host only, never a secret (webhook secret, Slack URL path, PagerDuty routing key); every text that comes
back from the network is scrubbed of them as well.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from driftwatch.errors import SinkRejected, SinkUnavailable

USER_AGENT = "driftwatch-notifier/1"

# httpx logs every request URL at INFO; a Slack webhook URL is a secret, so keep its request log quiet.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


@runtime_checkable
class Notifier(Protocol):
    """A place alerts go to. `send` delivers one notification or raises `DeliveryError`."""

    name: str
    kind: str
    wants_refresh: bool  # re-send "firing" on every run while firing (Alertmanager expires alerts otherwise)

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        """Deliver `event` once; `delivery_id` is stable across retries of the same notification."""
        ...


def redacted_host(url: str) -> str:
    """The host (and port) of `url` without user info, path or query: safe to log."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


def describe(kind: str, name: str, url: str) -> str:
    """How messages name a sink: kind, name and host only."""
    return f"{kind} sink {name!r} ({redacted_host(url)})"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` on one line with every secret replaced by `***`."""
    line = " ".join(text.split())
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        line = line.replace(secret, "***")
    return line


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def post(
    sink: str,
    url: str,
    body: bytes,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> httpx.Response:
    """POST `body` as JSON once; return the 2xx response or raise `SinkUnavailable` / `SinkRejected`.

    `sink` is the safe description (see `describe`); `secrets` are scrubbed from every message.
    """
    hidden = [url, urlsplit(url).path, *secrets]
    request_headers = {"content-type": "application/json", "user-agent": USER_AGENT, **(headers or {})}
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
            response = client.post(url, content=body, headers=request_headers)
    except httpx.TimeoutException as err:
        raise SinkUnavailable(f"{sink}: timed out after {timeout:g}s ({type(err).__name__})", sink=sink) from err
    except httpx.HTTPError as err:
        reason = scrub(str(err), hidden) or type(err).__name__
        raise SinkUnavailable(f"{sink}: request failed: {reason}", sink=sink) from err
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = scrub(response.text[:200], hidden)
    message = f"{sink}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise SinkUnavailable(message, sink=sink, status=status, retry_after=retry_after)
    raise SinkRejected(message, sink=sink, status=status)


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- readable text shared by Slack, PagerDuty, Alertmanager and the log sink ---------------------------------


def parse_time(value: Any) -> datetime:
    """An aware UTC datetime from an ISO text (or datetime) in a notification."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """`2024-05-01T12:00:00Z` style text."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def target(event: Mapping[str, Any]) -> str:
    """`monitor/feature`, or `monitor (dataset)` when the alert is not about one feature."""
    monitor = str(event.get("monitor", "?"))
    feature = event.get("feature")
    if feature:
        return f"{monitor}/{feature}"
    subject = event.get("subject")
    return f"{monitor} ({subject})" if subject and subject != monitor else monitor


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _threshold(value: Any, severity: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(severity, value.get("warning"))
    return value


def top_statistics(event: Mapping[str, Any], limit: int = 3) -> list[str]:
    """Up to `limit` `name=value` texts from `details.statistics`, with the threshold when one is given."""
    details = event.get("details") or {}
    if not isinstance(details, Mapping):
        return []
    statistics = details.get("statistics") or {}
    thresholds = details.get("thresholds") or {}
    if isinstance(statistics, Mapping):
        pairs = list(statistics.items())
    elif isinstance(statistics, list):
        pairs = [(item.get("name", "?"), item.get("value")) for item in statistics if isinstance(item, Mapping)]
    else:
        return []
    severity = str(event.get("severity", "warning"))
    texts = []
    for name, value in pairs[:limit]:
        if isinstance(value, Mapping):  # e.g. {"psi": {"value": 0.3, ...}}
            value = value.get("value")
        text = f"{name}={_number(value)}"
        limit_value = _threshold(thresholds.get(name), severity) if isinstance(thresholds, Mapping) else None
        if isinstance(limit_value, int | float) and not isinstance(limit_value, bool):
            text += f" (threshold {_number(limit_value)})"
        texts.append(text)
    return texts


def window_text(event: Mapping[str, Any]) -> str | None:
    """The data window as `start → end`, or None."""
    details = event.get("details") or {}
    window = details.get("window") if isinstance(details, Mapping) else None
    if isinstance(window, Mapping):
        start, end = window.get("start"), window.get("end")
        if start or end:
            return f"{start or '?'} → {end or '?'}"
        return None
    return str(window) if window else None


def summary(event: Mapping[str, Any]) -> str:
    """One readable line: `[FIRING] FeatureDrift on churn/age (critical): psi=0.31 (threshold 0.25)`."""
    status = str(event.get("status", "firing"))
    line = f"[{status.upper()}] {event.get('alertname', 'Alert')} on {target(event)} ({event.get('severity', '?')})"
    if status == "resolved":
        return line
    reason = event.get("reason")
    statistics = top_statistics(event)
    if statistics:
        line += ": " + ", ".join(statistics)
    elif reason:
        line += f": {reason}"
    return line


def report_link(event: Mapping[str, Any]) -> str | None:
    """The daemon's report URL of this alert, if any."""
    links = event.get("links") or {}
    link = links.get("report") if isinstance(links, Mapping) else None
    return str(link) if link else None
