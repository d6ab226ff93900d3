"""The real stack: a driftwatch daemon on drifting data, Prometheus scraping it with the shipped rules, Alertmanager.

One module-scoped stack serves every test: Prometheus's series equal the daemon's report, every PromQL expression
of the dashboard and the rule files returns data, and alerts reach a loopback webhook through Alertmanager, both
from the Prometheus rules and from driftwatch's own alertmanager sink.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port, require_binary
from daemon_harness import DaemonProcess
from datasets import write_dataset
from servers import Prometheus, WebhookReceiver, alertmanager_server, prometheus_server, wait_until

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "driftwatch.json"
RULES = ROOT / "config" / "prometheus" / "driftwatch-rules.yml"
DRIFTING, STARVED = "drifting", "starved"
FEATURE_METRICS = ["psi", "ks_statistic", "ks_pvalue", "chi2_pvalue", "js_distance", "wasserstein", "missing_share"]
#: Grafana's variables as the test substitutes them.
VARIABLES = {"$monitor": f"{DRIFTING}|{STARVED}", "$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
#: Metrics other issues add to the daemon (alerting, model switching); an expression needing one that the daemon
#: does not export yet fails with a message saying so.
PENDING_METRICS = [
    "driftwatch_alerts_firing",
    "driftwatch_notifications_total",
    "driftwatch_outbox_pending",
    "driftwatch_outbox_dead_letters",
    "driftwatch_model_active",
    "driftwatch_model_fallback_active",
    "driftwatch_model_pinned",
    "driftwatch_model_switches_total",
]
SELECTOR = re.compile(r"(?<![\w:$])((?:driftwatch[\w:]*|up|ALERTS)(?:\{[^}]*\})?)")

DAEMON_CONFIG = """\
server: {{host: 127.0.0.1, port: {port}}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
alerting:
  sinks:
    am: {{kind: alertmanager, url: "{alertmanager}"}}
  defaults: {{for_runs: 1}}
models:
  churn:
    primary: churn-v3
    fallbacks: [churn-v2]
    switch: {{on: critical, after_runs: 1, min_dwell: 1h}}
    restore: manual
    actuators: [{{kind: file, path: var/routes/churn.json}}]
monitors:
  {drifting}:
    model: churn
    reference: {{path: reference/train.parquet}}
    source: files
    schedule: {{every: 3s}}
    window: 1h
    min_rows: 100
    features: {{numeric: [age, income], categorical: [plan]}}
  {starved}:
    reference: {{path: reference/train.parquet}}
    source: files
    schedule: {{every: 3s}}
    window: 1h
    min_rows: 1000000
    features: {{numeric: [age, income], categorical: [plan]}}
"""


@dataclass(frozen=True)
class Expression:
    """One PromQL expression of a shipped file, with where it comes from."""

    where: str
    expr: str
    is_alert: bool = False

    def resolved(self) -> str:
        """The expression with Grafana's variables replaced by values for this stack."""
        expr = self.expr
        for name, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
            expr = expr.replace(name, value)
        return expr


def dashboard_expressions() -> list[Expression]:
    """Every query of the dashboard: panel targets, template variables (their metric selector), annotations."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append(Expression(f"panel {panel['title']} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: unexpected query {query!r}"
        found.append(Expression(f"variable {variable['name']}", match.group(1)))
    for annotation in dashboard["annotations"]["list"]:
        if annotation.get("expr"):
            found.append(Expression(f"annotation {annotation['name']}", annotation["expr"]))
    return found


def rule_expressions() -> list[Expression]:
    """Every recording and alerting rule expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [
        Expression(f"rule {rule.get('record') or rule.get('alert')}", rule["expr"], "alert" in rule)
        for group in groups
        for rule in group["rules"]
    ]


EXPRESSIONS = dashboard_expressions() + rule_expressions()


@dataclass(frozen=True)
class Stack:
    prometheus: Prometheus
    daemon: DaemonProcess
    receiver: WebhookReceiver
    alertmanager: str


def alertmanager_config(receiver_url: str) -> dict[str, Any]:
    """The shipped Alertmanager config pointed at `receiver_url`, with second-scale grouping."""
    config = yaml.safe_load((ROOT / "config" / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = receiver_url
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    return config


def prometheus_config(daemon_port: int, alertmanager: str) -> dict[str, Any]:
    """The shipped scrape config pointed at the daemon (plus a closed port, so DriftwatchDown has a target)."""
    config = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager.removeprefix("http://")]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{daemon_port}",
        f"127.0.0.1:{free_port()}",
    ]
    return config


def fast_rules() -> dict[str, Any]:
    """The shipped rules with every `for` at 0s, so alerts fire within the test's time."""
    rules = copy.deepcopy(yaml.safe_load(RULES.read_text()))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    return rules


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Receiver, Alertmanager, the daemon (every 3s on drifting data) and Prometheus (1s scrapes and rules)."""
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    root = tmp_path_factory.mktemp("stack")
    with WebhookReceiver() as receiver, alertmanager_server(root / "am", alertmanager_config(receiver.url)) as am:
        write_dataset(root / "dw", rows=2000, shift=0.8)
        port = free_port()
        config = root / "dw" / "driftwatch.yaml"
        config.write_text(DAEMON_CONFIG.format(port=port, alertmanager=am, drifting=DRIFTING, starved=STARVED))
        daemon = DaemonProcess(config, port)
        try:
            daemon.wait_ready(60)
            rules = {"driftwatch-rules.yml": fast_rules()}
            with prometheus_server(root / "prom", prometheus_config(port, am), rules) as prometheus:
                ready = [
                    f'driftwatch:monitor_run_interval_seconds{{monitor="{DRIFTING}"}}',
                    f'increase(driftwatch_monitor_runs_total{{monitor="{DRIFTING}"}}[1m]) > 0',
                    'ALERTS{alertname="FeatureDriftCritical", alertstate="firing"}',
                    'ALERTS{alertname="DriftMonitorStale", alertstate="firing"}',
                    'ALERTS{alertname="DriftwatchDown", alertstate="firing"}',
                ]
                for expr in ready:
                    wait_until(
                        lambda e=expr: bool(prometheus.query(e)),
                        f"Prometheus: {expr}",
                        60,
                        lambda: prometheus.server.log() + daemon.log()[-3000:],
                    )
                yield Stack(prometheus, daemon, receiver, am)
        finally:
            daemon.kill()


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


@pytest.mark.integration
def test_prometheus_series_equal_the_daemons_report(stack: Stack) -> None:
    """Prometheus holds the driftwatch series with exactly the values of the daemon's report."""
    report = stack.daemon.json(f"/api/v1/monitors/{DRIFTING}/report")
    assert report["severity"] == "critical"
    query = stack.prometheus.query
    monitor = f'monitor="{DRIFTING}"'
    assert value(query(f"driftwatch_monitor_rows{{{monitor}}}")[0]) == report["rows"]["current"] == 2000
    assert value(query(f"driftwatch_monitor_reference_rows{{{monitor}}}")[0]) == report["rows"]["reference"]
    assert value(query(f"driftwatch_monitor_drift_share{{{monitor}}}")[0]) == report["drift_share"]
    assert value(query(f"driftwatch_monitor_severity{{{monitor}}}")[0]) == 2
    assert value(query(f"driftwatch_monitor_up{{{monitor}}}")[0]) == 1
    assert value(query(f"driftwatch_monitor_runs_total{{{monitor}}}")[0]) >= 2
    for stat in FEATURE_METRICS:
        samples = {s["metric"]["feature"]: value(s) for s in query(f"driftwatch_feature_{stat}{{{monitor}}}")}
        expected = {name: f[stat] for name, f in report["features"].items() if f[stat] is not None}
        assert samples.keys() == expected.keys(), stat
        for feature, want in expected.items():
            assert math.isclose(samples[feature], want, rel_tol=1e-12, abs_tol=1e-300), (stat, feature)
    severities = {s["metric"]["feature"]: value(s) for s in query(f"driftwatch_feature_severity{{{monitor}}}")}
    assert severities == {
        name: {"ok": 0, "warning": 1, "critical": 2}[f["severity"]] for name, f in report["features"].items()
    }
    # The starved monitor runs but never judges a batch: no statistics, no last success, still up.
    assert query(f'driftwatch_feature_psi{{monitor="{STARVED}"}}') == []
    assert query(f'driftwatch_monitor_last_success_timestamp_seconds{{monitor="{STARVED}"}}') == []
    assert value(query(f'driftwatch_monitor_up{{monitor="{STARVED}"}}')[0]) == 1
    versions = {dict(labels)["version"] for name, labels in stack.daemon.metrics() if name == "driftwatch_build_info"}
    assert {s["metric"]["version"] for s in query("driftwatch_build_info")} == versions


def missing_pending_metrics(stack: Stack, expr: str) -> list[str]:
    """The metrics of PENDING_METRICS that `expr` uses and the daemon does not export yet."""
    exported = {name for name, _ in stack.daemon.metrics()}
    return [name for name in PENDING_METRICS if re.search(rf"\b{name}\b", expr) and name not in exported]


@pytest.mark.integration
@pytest.mark.parametrize("expression", [pytest.param(e, id=e.where) for e in EXPRESSIONS])
def test_expression_parses_and_returns_data(stack: Stack, expression: Expression) -> None:
    """The dashboard or rule expression parses and returns data against the live stack."""
    expr = expression.resolved()
    assert "$" not in expr.replace('"$1"', ""), f"unsubstituted variable in {expr}"
    result = stack.prometheus.query(expr)  # raises with Prometheus's parse error
    missing = missing_pending_metrics(stack, expr)
    assert not missing, f"waiting on the daemon to export {', '.join(missing)}: {expression.where}: {expr}"
    deadline = time.monotonic() + 10
    while not result and time.monotonic() < deadline:
        time.sleep(0.5)
        result = stack.prometheus.query(expr)
    if result or not expression.is_alert:
        assert result, f"{expression.where}: no data for {expr}"
        return
    # A condition that is false on this healthy stack: every series it reads must still exist.
    selectors = SELECTOR.findall(expr)
    assert selectors, expr
    empty = [s for s in selectors if not stack.prometheus.query(s)]
    assert not empty, f"{expression.where}: no data for {empty}"


def received(stack: Stack, alertname: str) -> list[dict[str, str]]:
    """Labels of the firing alerts named `alertname` that the webhook received."""
    return [
        a["labels"]
        for a in stack.receiver.alerts()
        if a["labels"].get("alertname") == alertname and a.get("status") == "firing"
    ]


@pytest.mark.integration
def test_prometheus_rules_deliver_through_alertmanager(stack: Stack) -> None:
    """FeatureDriftCritical and DatasetDriftCritical reach the webhook with monitor, feature and severity."""
    wait_until(
        lambda: received(stack, "FeatureDriftCritical") and received(stack, "DatasetDriftCritical"),
        "Prometheus drift alerts at the webhook",
        30,
        lambda: json.dumps(stack.receiver.alerts())[-3000:],
    )
    features = {(a["monitor"], a["feature"], a["severity"]) for a in received(stack, "FeatureDriftCritical")}
    report = stack.daemon.json(f"/api/v1/monitors/{DRIFTING}/report")
    critical = {name for name, f in report["features"].items() if f["severity"] == "critical"}
    assert critical and features == {(DRIFTING, name, "critical") for name in critical}
    assert {(a["monitor"], a["severity"]) for a in received(stack, "DatasetDriftCritical")} == {(DRIFTING, "critical")}
    assert any(a["job"] == "driftwatch" for a in received(stack, "DriftwatchDown"))


@pytest.mark.integration
def test_daemon_alertmanager_sink_delivers(stack: Stack) -> None:
    """driftwatch's own `kind: alertmanager` sink reaches the webhook with alertname, monitor, feature, severity."""

    def daemon_alerts() -> list[dict[str, str]]:
        return [*received(stack, "FeatureDrift"), *received(stack, "DatasetDrift")]

    wait_until(
        lambda: bool(daemon_alerts()),
        "driftwatch's own alerts at the webhook (alertmanager sink)",
        30,
        lambda: json.dumps(stack.receiver.alerts())[-2000:] + "\n" + stack.daemon.log()[-3000:],
    )
    report = stack.daemon.json(f"/api/v1/monitors/{DRIFTING}/report")
    critical = {name for name, f in report["features"].items() if f["severity"] == "critical"}
    features = {(a["monitor"], a["feature"], a["severity"]) for a in received(stack, "FeatureDrift")}
    assert {(DRIFTING, name, "critical") for name in critical} <= features
    for labels in daemon_alerts():
        assert {"alertname", "monitor", "feature", "severity"} <= labels.keys()
