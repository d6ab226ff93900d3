"""Where alerts go (webhook, Slack, PagerDuty, Alertmanager, log sinks), delivery retries and lifecycle defaults."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from driftwatch.config.base import StrictModel
from driftwatch.config.durations import Duration


class RetryConfig(StrictModel):
    """Delivery retries: exponential backoff from `initial` up to `max_interval`, dead letter after `max_age`."""

    initial: Duration = timedelta(seconds=2)
    max_interval: Duration = timedelta(minutes=10)
    max_age: Duration = timedelta(hours=24)


class _SinkConfig(StrictModel):
    timeout: Duration = timedelta(seconds=10)
    retry: RetryConfig = RetryConfig()


class WebhookSinkConfig(_SinkConfig):
    """A JSON webhook signed per Standard Webhooks when `secret` is set."""

    kind: Literal["webhook"]
    url: str
    secret: SecretStr | None = None


class SlackSinkConfig(_SinkConfig):
    """A Slack incoming webhook (its URL is a secret)."""

    kind: Literal["slack"]
    url: SecretStr


class PagerDutySinkConfig(_SinkConfig):
    """PagerDuty Events API v2."""

    kind: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"


class AlertmanagerSinkConfig(_SinkConfig):
    """Prometheus Alertmanager's API v2 (base URL, e.g. http://127.0.0.1:9093)."""

    kind: Literal["alertmanager"]
    url: str


class LogSinkConfig(_SinkConfig):
    """Write notifications to the daemon's log."""

    kind: Literal["log"]


SinkConfig = Annotated[
    WebhookSinkConfig | SlackSinkConfig | PagerDutySinkConfig | AlertmanagerSinkConfig | LogSinkConfig,
    Field(discriminator="kind"),
]


class AlertDefaults(StrictModel):
    """The alert lifecycle: fire after `for_runs` breaching runs, resolve after `resolve_after_runs` clean ones."""

    for_runs: int = Field(default=2, ge=1)
    resolve_after_runs: int = Field(default=2, ge=1)
    repeat_interval: Duration = timedelta(hours=4)
    min_severity: Literal["warning", "critical"] = "warning"


class AlertingConfig(StrictModel):
    """Where alerts go, and the lifecycle defaults."""

    sinks: dict[str, SinkConfig] = {}
    defaults: AlertDefaults = AlertDefaults()
