"""The HTTP API against a fake daemon: every route, JSON errors, readiness and reload."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from starlette.exceptions import StarletteDeprecationWarning

from driftwatch.core.report import FeatureResult, FeatureStats, Report, Severity
from driftwatch.core.status import MonitorStatus
from driftwatch.errors import ConfigError
from driftwatch.outputs.exporter import DriftCollector
from driftwatch.runtime.http import create_app, redact

with warnings.catch_warnings():
    # Starlette >= 1.x prefers httpx2 for its TestClient and warns once at import when only httpx is installed;
    # a no-op once httpx2 is in the test extras.
    warnings.filterwarnings(
        "ignore", message="Using `httpx` with `starlette.testclient`", category=StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


class FakeDaemon:
    """A DaemonControl over fixed statuses; reload raises `reload_error` when set."""

    def __init__(self, statuses: Mapping[str, MonitorStatus], problems: list[str] | None = None) -> None:
        self._statuses = dict(statuses)
        self._problems = problems or []
        self.reload_error: Exception | None = None
        self.reloads = 0
        self.api_token: str | None = None
        self.read_token: str | None = None
        self.registry = CollectorRegistry()
        self.registry.register(DriftCollector(self.statuses, "1.2.3", lambda: self.reload_error is None))

    def statuses(self) -> Mapping[str, MonitorStatus]:
        return self._statuses

    def problems(self) -> list[str]:
        return list(self._problems)

    def tokens(self) -> tuple[str | None, str | None]:
        return self.api_token, self.read_token

    def reload(self) -> None:
        self.reloads += 1
        if self.reload_error is not None:
            raise self.reload_error


def sample_report() -> Report:
    """A one-feature report with critical drift."""
    stats = FeatureStats("age", "numeric", "ok", 500, missing_share=0.0, psi=0.4, ks_statistic=0.3, ks_pvalue=0.001)
    feature = FeatureResult(stats, Severity.CRITICAL, adjusted_pvalue=0.002, significant=True)
    return Report((feature,), 1000, 500, "ok", Severity.CRITICAL, drift_share=1.0, window_start=T0, window_end=T1)


def statuses() -> dict[str, MonitorStatus]:
    """Three monitors: one with a report, one whose last run failed, one that never ran."""
    payments = MonitorStatus("payments", "*/5 * * * *").after_run(
        "ok", finished=T1, seconds=0.5, report=sample_report()
    )
    signups = (
        MonitorStatus("signups", "@hourly")
        .after_run("ok", finished=T0, seconds=0.2, report=sample_report())
        .after_run("error", finished=T1, seconds=0.1, error="cannot read postgresql://app:hunter2@db/prod")
    )
    return {"payments": payments, "signups": signups, "idle": MonitorStatus("idle", "@daily")}


@pytest.fixture
def daemon() -> FakeDaemon:
    """A fake daemon with three monitors and no readiness problems."""
    return FakeDaemon(statuses())


@pytest.fixture
def client(daemon: FakeDaemon) -> TestClient:
    """A test client for the app over `daemon`."""
    with TestClient(create_app(daemon)) as test_client:
        yield test_client


def test_metrics_serves_prometheus_exposition(client: TestClient):
    """GET /metrics returns the registry in the Prometheus text format."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"driftwatch_build_info", "driftwatch_monitor_up", "driftwatch_feature_psi"} <= families


def test_healthz(client: TestClient):
    """GET /healthz is always ok."""
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_ready(client: TestClient):
    """GET /readyz is 200 without problems."""
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_readyz_not_ready_lists_problems():
    """GET /readyz is 503 with the daemon's problems."""
    problems = ["scheduler not started", "monitor 'payments' has no reference profile"]
    with TestClient(create_app(FakeDaemon(statuses(), problems))) as client:
        response = client.get("/readyz")
    assert (response.status_code, response.json()) == (503, {"status": "not ready", "problems": problems})


def test_monitors_lists_every_monitor(client: TestClient):
    """GET /api/v1/monitors summarises every monitor in snapshot order."""
    response = client.get("/api/v1/monitors")
    assert response.status_code == 200
    monitors = response.json()["monitors"]
    assert [m["monitor"] for m in monitors] == ["payments", "signups", "idle"]
    assert monitors[0] == {
        "monitor": "payments",
        "schedule": "*/5 * * * *",
        "outcome": "ok",
        "last_run": "2024-05-01T12:05:00+00:00",
        "last_success": "2024-05-01T12:05:00+00:00",
        "severity": "critical",
        "drift_share": 1.0,
        "rows": 500,
        "error": None,
        "runs_total": 1,
        "failures_total": 0,
        "health": None,
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "signups",
            {
                "monitor": "signups",
                "schedule": "@hourly",
                "outcome": "error",
                "last_run": "2024-05-01T12:05:00+00:00",
                "last_success": "2024-05-01T12:00:00+00:00",
                "severity": None,
                "drift_share": None,
                "rows": None,
                "error": "cannot read postgresql://app:***@db/prod",
                "runs_total": 2,
                "failures_total": 1,
                "health": None,
            },
            id="failed-run-redacted",
        ),
        pytest.param(
            "idle",
            {
                "monitor": "idle",
                "schedule": "@daily",
                "outcome": "never",
                "last_run": None,
                "last_success": None,
                "severity": None,
                "drift_share": None,
                "rows": None,
                "error": None,
                "runs_total": 0,
                "failures_total": 0,
                "health": None,
            },
            id="never-ran",
        ),
    ],
)
def test_monitor_detail(client: TestClient, name: str, expected: dict):
    """GET /api/v1/monitors/{name} returns that monitor's summary; secrets in errors are redacted."""
    response = client.get(f"/api/v1/monitors/{name}")
    assert (response.status_code, response.json()) == (200, expected)
    assert "hunter2" not in client.get("/api/v1/monitors").text


def test_report_returns_report_json_with_monitor_name(client: TestClient):
    """GET /api/v1/monitors/{name}/report is the report's to_dict() with the monitor name set."""
    response = client.get("/api/v1/monitors/payments/report")
    assert response.status_code == 200
    assert response.json() == {**sample_report().to_dict(), "monitor": "payments"}


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("/api/v1/monitors/nope", "unknown monitor 'nope'", id="unknown-monitor"),
        pytest.param("/api/v1/monitors/nope/report", "unknown monitor 'nope'", id="unknown-monitor-report"),
        pytest.param(
            "/api/v1/monitors/idle/report", "monitor 'idle' has no report yet (last outcome: never)", id="never-ran"
        ),
        pytest.param(
            "/api/v1/monitors/signups/report", "monitor 'signups' has no report yet (last outcome: error)", id="failed"
        ),
        pytest.param("/no/such/path", "not found", id="unknown-path"),
        pytest.param("/api/v1/monitors/payments/report/extra", "not found", id="too-deep"),
    ],
)
def test_not_found_is_json(client: TestClient, path: str, error: str):
    """Unknown monitors, missing reports and unknown paths are 404 with a JSON error."""
    response = client.get(path)
    assert (response.status_code, response.json()) == (404, {"error": error})


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("POST", "/metrics", "GET, HEAD", id="post-metrics"),
        pytest.param("DELETE", "/api/v1/monitors/payments", "GET, HEAD", id="delete-monitor"),
        pytest.param("GET", "/-/reload", "POST", id="get-reload"),
    ],
)
def test_wrong_method_is_json_405(client: TestClient, method: str, path: str, allow: str):
    """A wrong method is 405 with a JSON error and an Allow header."""
    response = client.request(method, path)
    assert (response.status_code, response.json()) == (405, {"error": "method not allowed"})
    assert set(response.headers["allow"].split(", ")) == set(allow.split(", "))


def test_reload_success(client: TestClient, daemon: FakeDaemon):
    """POST /-/reload reloads the daemon and says so."""
    response = client.post("/-/reload")
    assert (response.status_code, response.json()) == (200, {"status": "reloaded"})
    assert daemon.reloads == 1


def test_reload_failure_is_400_with_one_line_error(client: TestClient, daemon: FakeDaemon):
    """An invalid config is 400 with the ConfigError on one line, secrets redacted, reload gauge 0."""
    daemon.reload_error = ConfigError(
        "cannot connect to\nmysql://root:s3cret@db:3306/x", file="driftwatch.yaml", path="monitors.0.source.url"
    )
    response = client.post("/-/reload")
    assert response.status_code == 400
    assert response.json() == {
        "error": "driftwatch.yaml: monitors.0.source.url: cannot connect to mysql://root:***@db:3306/x"
    }
    assert "driftwatch_config_last_reload_successful 0.0" in client.get("/metrics").text


def test_unexpected_reload_error_is_opaque_500(daemon: FakeDaemon):
    """Any other error is a JSON 500 that reveals nothing."""
    daemon.reload_error = RuntimeError("password=hunter2")
    with TestClient(create_app(daemon), raise_server_exceptions=False) as client:
        response = client.post("/-/reload")
    assert (response.status_code, response.json()) == (500, {"error": "internal server error"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("postgresql://u:p@h/db", "postgresql://u:***@h/db", id="userinfo"),
        pytest.param("https://h/path?a=b", "https://h/path?a=b", id="no-userinfo"),
        pytest.param("x http://u@h y", "x http://u@h y", id="user-only"),
    ],
)
def test_redact(text: str, expected: str):
    """Passwords in URLs are replaced; other text is untouched."""
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("header", "status"),
    [
        pytest.param(None, 401, id="no-token"),
        pytest.param("Bearer wrong", 401, id="wrong-token"),
        pytest.param("Basic s3cret", 401, id="wrong-scheme"),
        pytest.param("Bearer s3cret", 200, id="right-token"),
    ],
)
def test_reload_needs_the_api_token_once_one_is_set(daemon: FakeDaemon, header: str | None, status: int) -> None:
    """With server.api_token set, POST /-/reload needs it; nothing is reloaded without it."""
    daemon.api_token = "s3cret"
    headers = {"authorization": header} if header else {}
    response = TestClient(create_app(daemon)).post("/-/reload", headers=headers)
    assert response.status_code == status
    assert daemon.reloads == (1 if status == 200 else 0)
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_read_token_guards_the_api_but_not_metrics(daemon: FakeDaemon) -> None:
    """With server.read_token set, /api/v1 needs the read (or API) token; /metrics and /healthz stay open."""
    daemon.read_token, daemon.api_token = "reader", "admin"
    client = TestClient(create_app(daemon))
    assert client.get("/api/v1/monitors").status_code == 401
    assert client.get("/api/v1/monitors", headers={"authorization": "Bearer reader"}).status_code == 200
    assert client.get("/api/v1/monitors", headers={"authorization": "Bearer admin"}).status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 200
