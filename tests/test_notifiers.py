"""Standard Webhooks signing and every notifier's request against a real loopback receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from conftest import free_port
from receivers import Receiver, sample_event

from driftwatch.errors import DeliveryError, DriftwatchError, SinkRejected, SinkUnavailable
from driftwatch.outputs.notifiers import (
    AlertmanagerNotifier,
    LogNotifier,
    Notifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
    parse_retry_after,
    redacted_host,
)
from driftwatch.outputs.signing import sign, signature_headers, signing_key, verify

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-signing-key-for-tests!").decode()
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"
TS = 1_714_564_800


# --- signing -----------------------------------------------------------------------------------------------------


def reference_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's signature, computed independently with hmac."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        pytest.param(SECRET, b"a-32-byte-signing-key-for-tests!", id="whsec-base64-decoded"),
        pytest.param("plain secret", b"plain secret", id="plain-utf8"),
        pytest.param("gehe1m-ü", "gehe1m-ü".encode(), id="non-ascii-utf8"),
    ],
)
def test_sign_matches_the_spec(secret: str, key: bytes) -> None:
    """sign() equals HMAC-SHA256 over id.timestamp.body with the decoded key."""
    body = b'{"status":"firing"}'
    assert signing_key(secret) == key
    assert sign(secret, "msg_1", TS, body) == reference_signature(key, "msg_1", TS, body)


def test_sign_known_vector_from_the_spec() -> None:
    """The Standard Webhooks reference vector signs to its published value."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_malformed_whsec_secret_is_refused() -> None:
    """A whsec_ secret that is not base64 raises ValueError without echoing the secret."""
    with pytest.raises(ValueError, match="not valid base64") as info:
        signing_key("whsec_%%%not-base64%%%")
    assert "%%%" not in str(info.value)


def signed(body: bytes, secret: str = SECRET, msg_id: str = "msg_1", timestamp: int = TS) -> dict[str, str]:
    """Headers of a correctly signed message."""
    return signature_headers(secret, msg_id, body, timestamp=timestamp)


def tamper_body(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """Change one byte of the body."""
    return headers, body.replace(b"firing", b"resolv")


def tamper_id(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """Claim another message id."""
    return {**headers, "webhook-id": "msg_2"}, body


def tamper_timestamp(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """Claim another (still fresh) timestamp."""
    return {**headers, "webhook-timestamp": str(TS + 1)}, body


def old_timestamp(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """A correct signature over a timestamp ten minutes old."""
    return signed(body, timestamp=TS - 600), body


def wrong_secret(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """Signed with another secret."""
    return signed(body, secret="another secret"), body


def missing_signature(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """No webhook-signature header."""
    return {k: v for k, v in headers.items() if k != "webhook-signature"}, body


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(tamper_body, id="body"),
        pytest.param(tamper_id, id="id"),
        pytest.param(tamper_timestamp, id="timestamp"),
        pytest.param(old_timestamp, id="too-old"),
        pytest.param(wrong_secret, id="wrong-secret"),
        pytest.param(missing_signature, id="missing-signature"),
    ],
)
def test_verify_rejects_tampering(tamper: Callable[..., tuple[dict[str, str], bytes]]) -> None:
    """verify() accepts the genuine message and rejects every alteration."""
    body = b'{"status":"firing"}'
    headers = signed(body)
    assert verify(SECRET, headers, body, now=TS + 10)
    assert not verify(SECRET, *tamper(headers, body), now=TS + 10)


def test_verify_accepts_one_of_several_signatures_and_any_header_case() -> None:
    """A header with several space-separated signatures verifies if one matches; names are case-insensitive."""
    body = b"{}"
    good = sign(SECRET, "msg_1", TS, body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(TS), "Webhook-Signature": f"v1,AAAA {good} v2,whatever"}
    assert verify(SECRET, headers, body, now=TS)
    assert not verify(SECRET, {**headers, "Webhook-Signature": "v1,AAAA v1,BBBB"}, body, now=TS)


# --- notifiers against the receiver ------------------------------------------------------------------------------


def test_notifiers_satisfy_the_protocol() -> None:
    """Every sink is a Notifier; only Alertmanager wants refresh events."""
    sinks = [
        WebhookNotifier("w", "http://x"),
        SlackNotifier("s", "http://x"),
        PagerDutyNotifier("p", ROUTING_KEY, "http://x"),
        AlertmanagerNotifier("a", "http://x"),
        LogNotifier("l"),
    ]
    assert all(isinstance(sink, Notifier) for sink in sinks)
    assert [sink.kind for sink in sinks] == ["webhook", "slack", "pagerduty", "alertmanager", "log"]
    assert [sink.wants_refresh for sink in sinks] == [False, False, False, True, False]


def test_webhook_posts_signed_json() -> None:
    """The webhook body is the event JSON, signed with webhook-id = the delivery id, and verifies."""
    event = sample_event()
    with Receiver(secret=SECRET) as receiver:
        WebhookNotifier("oncall", receiver.url + "/hooks/drift", SECRET, timeout=5).send(event, "dlv-1")
    (request,) = receiver.requests
    assert (request.path, request.status, request.verified) == ("/hooks/drift", 200, True)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "dlv-1"
    assert request.json() == event
    assert request.json()["status"] == "firing"


def test_webhook_without_secret_is_unsigned_but_identified() -> None:
    """Without a secret the webhook still carries webhook-id and webhook-timestamp, but no signature."""
    with Receiver() as receiver:
        WebhookNotifier("plain", receiver.url, None, timeout=5).send(sample_event(status="resolved"), "dlv-2")
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == "dlv-2"
    assert "webhook-signature" not in request.headers
    assert request.json()["status"] == "resolved"


def test_webhook_signed_with_the_wrong_secret_is_refused_by_the_receiver() -> None:
    """A receiver that verifies signatures refuses a webhook signed with another secret (401, not retryable)."""
    with Receiver(secret=SECRET) as receiver, pytest.raises(DeliveryError) as info:
        WebhookNotifier("oncall", receiver.url, "whsec_" + base64.b64encode(b"other").decode(), 5).send(
            sample_event(), "dlv-3"
        )
    assert (info.value.status, info.value.retryable) == (401, False)
    assert receiver.requests[0].verified is False


def test_slack_body_has_text_and_blocks() -> None:
    """Slack gets one readable text line plus a mrkdwn section and a context block with the report link."""
    with Receiver() as receiver:
        SlackNotifier("team-slack", receiver.url + "/services/T0/B0/XYZ", timeout=5).send(sample_event(), "d")
    body = receiver.requests[0].json()
    assert body["text"].startswith(":red_circle: [FIRING] FeatureDrift on churn/age (critical)")
    assert "\n" not in body["text"]
    section, context = body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    text = section["text"]["text"]
    for expected in (
        "FIRING",
        "FeatureDrift",
        "churn/age",
        "critical",
        "psi=0.312 (threshold 0.25)",
        "ks=0.18",
        "2024-05-01T11:00:00+00:00 → 2024-05-01T12:00:00+00:00",
    ):
        assert expected in text
    assert context["type"] == "context"
    assert "<http://127.0.0.1:9108/api/v1/monitors/churn/report|Drift report>" in context["elements"][0]["text"]


def test_slack_resolved_message() -> None:
    """A resolved Slack message says so with a check mark."""
    with Receiver() as receiver:
        SlackNotifier("s", receiver.url, timeout=5).send(sample_event(status="resolved", event="alert.resolved"), "d")
    assert receiver.requests[0].json()["text"].startswith(":white_check_mark: [RESOLVED] FeatureDrift on churn/age")


def test_pagerduty_trigger_and_resolve_share_the_dedup_key() -> None:
    """PagerDuty gets an Events v2 trigger with payload, then a bare resolve with the same dedup_key."""
    with Receiver() as receiver:
        notifier = PagerDutyNotifier("pager", ROUTING_KEY, url=receiver.url + "/v2/enqueue", timeout=5)
        notifier.send(sample_event(), "d1")
        notifier.send(sample_event(status="resolved", event="alert.resolved", at="2024-05-01T13:00:00+00:00"), "d2")
    trigger, resolve = (request.json() for request in receiver.requests)
    key = "driftwatch/churn/age/FeatureDrift/2024-05-01T12:00:00+00:00"
    assert receiver.requests[0].path == "/v2/enqueue"
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == key
    payload = trigger["payload"]
    assert (payload["source"], payload["severity"], payload["component"], payload["group"]) == (
        "driftwatch",
        "critical",
        "churn",
        "FeatureDrift",
    )
    assert payload["summary"].startswith("[FIRING] FeatureDrift on churn/age")
    assert payload["custom_details"] == sample_event()["details"]
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}


def test_alertmanager_firing_and_resolved() -> None:
    """Alertmanager gets labels and startsAt; endsAt is at + 15 min while firing and at when resolved."""
    with Receiver() as receiver:
        notifier = AlertmanagerNotifier("am", receiver.url + "/", timeout=5)
        notifier.send(sample_event(event="alert.refresh"), "d1")
        notifier.send(sample_event(status="resolved", event="alert.resolved", at="2024-05-01T13:00:00+00:00"), "d2")
    assert [request.path for request in receiver.requests] == ["/api/v2/alerts", "/api/v2/alerts"]
    (firing,), (resolved,) = (request.json() for request in receiver.requests)
    assert firing["labels"] == {
        "alertname": "FeatureDrift",
        "monitor": "churn",
        "feature": "age",
        "severity": "critical",
    }
    assert firing["startsAt"] == "2024-05-01T12:00:00Z"
    assert firing["endsAt"] == "2024-05-01T12:25:00Z"
    assert firing["generatorURL"] == "http://127.0.0.1:9108/api/v1/monitors/churn/report"
    assert firing["annotations"]["description"] == "psi 0.31 above critical threshold 0.25"
    assert firing["annotations"]["summary"].startswith("[FIRING] FeatureDrift")
    assert resolved["labels"] == firing["labels"]
    assert (resolved["startsAt"], resolved["endsAt"]) == ("2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z")


def test_alertmanager_dataset_alert_labels_the_subject() -> None:
    """A dataset-level alert carries feature="dataset"."""
    with Receiver() as receiver:
        AlertmanagerNotifier("am", receiver.url, timeout=5).send(
            sample_event(alertname="DatasetDrift", subject="dataset", feature=None, severity="warning"), "d"
        )
    (alert,) = receiver.requests[0].json()
    assert alert["labels"] == {
        "alertname": "DatasetDrift",
        "monitor": "churn",
        "feature": "dataset",
        "severity": "warning",
    }


def test_log_notifier_logs_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    """The log sink writes one readable line per notification."""
    with caplog.at_level(logging.INFO, logger="driftwatch.alerts"):
        LogNotifier("console").send(sample_event(), "dlv-9")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("alert [FIRING] FeatureDrift on churn/age (critical): psi=0.312")
    assert record.__dict__["delivery_id"] == "dlv-9"


# --- failures ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "retryable", "expected_wait"),
    [
        pytest.param(503, None, True, None, id="503-retryable"),
        pytest.param(500, None, True, None, id="500-retryable"),
        pytest.param(408, None, True, None, id="408-retryable"),
        pytest.param(429, "7", True, 7.0, id="429-retry-after-seconds"),
        pytest.param(400, None, False, None, id="400-not-retryable"),
        pytest.param(404, None, False, None, id="404-not-retryable"),
        pytest.param(410, None, False, None, id="410-revoked-not-retryable"),
    ],
)
def test_http_errors_are_classified(
    status: int, retry_after: str | None, retryable: bool, expected_wait: float | None
) -> None:
    """Failures raise a DeliveryError with status, retryable and retry_after."""
    with Receiver() as receiver:
        receiver.fail(1, status, retry_after=retry_after)
        with pytest.raises(DeliveryError) as info:
            WebhookNotifier("oncall", receiver.url, SECRET, 5).send(sample_event(), "d")
    error = info.value
    assert isinstance(error, SinkUnavailable if retryable else SinkRejected)
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, expected_wait)
    assert f"HTTP {status}" in str(error)


def test_delivery_errors_carry_retryable_on_the_base_class() -> None:
    """DeliveryError declares `retryable` and `retry_after` (default: not retryable); its subclasses set them."""
    plain = DeliveryError("actuator refused")
    assert (plain.retryable, plain.retry_after, plain.status, plain.sink) == (False, None, None, None)
    busy = SinkUnavailable("busy", sink="webhook sink 'x'", status=429, retry_after=3.0)
    assert (busy.retryable, busy.retry_after, busy.status) == (True, 3.0, 429)
    assert not SinkRejected("no", status=404).retryable
    assert isinstance(busy, DriftwatchError) and issubclass(SinkRejected, DeliveryError)


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date becomes the seconds until then."""
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("1.5") == 1.5


def test_unreachable_sink_is_retryable() -> None:
    """A refused connection is a retryable failure without a status."""
    with pytest.raises(DeliveryError) as info:
        WebhookNotifier("oncall", f"http://127.0.0.1:{free_port()}/x", None, 2).send(sample_event(), "d")
    assert (info.value.retryable, info.value.status) == (True, None)


def test_timeout_is_retryable() -> None:
    """A receiver slower than the timeout is a retryable failure."""
    with Receiver(delay=0.5) as receiver, pytest.raises(DeliveryError, match="timed out") as info:
        WebhookNotifier("oncall", receiver.url, None, timeout=0.1).send(sample_event(), "d")
    assert info.value.retryable


SinkFactory = Callable[[str], Any]


@pytest.mark.parametrize(
    ("make", "secret"),
    [
        pytest.param(
            lambda url: SlackNotifier("team-slack", url + "/services/T0SECRET/B0SECRET/XXSECRET", 5),
            "XXSECRET",
            id="slack-url-path",
        ),
        pytest.param(
            lambda url: PagerDutyNotifier("pager", ROUTING_KEY, url=url, timeout=5),
            ROUTING_KEY,
            id="pagerduty-routing-key",
        ),
        pytest.param(lambda url: WebhookNotifier("oncall", url, SECRET, 5), SECRET, id="webhook-secret"),
    ],
)
def test_errors_and_logs_never_show_secrets(make: SinkFactory, secret: str, caplog: pytest.LogCaptureFixture) -> None:
    """Error messages (even when the sink echoes the secret), reprs and logs name the sink and host only."""
    with caplog.at_level(logging.DEBUG), Receiver() as receiver:
        receiver.fail(1, 400)
        notifier = make(receiver.url)
        with pytest.raises(DeliveryError) as info:
            notifier.send(sample_event(), "d")
    texts = [str(info.value), repr(notifier), caplog.text]
    assert all(secret not in text and "SECRET" not in text for text in texts)
    assert "127.0.0.1" in str(info.value) and repr(notifier.name) in str(info.value)


def test_redacted_host_drops_credentials_and_path() -> None:
    """redacted_host keeps host and port only."""
    assert redacted_host("https://user:pw@hooks.slack.com/services/T/B/X?q=1") == "hooks.slack.com"
    assert redacted_host("http://127.0.0.1:9093/api") == "127.0.0.1:9093"
