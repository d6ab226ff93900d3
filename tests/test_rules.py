"""The shipped Prometheus, Alertmanager, Grafana and docker compose files: syntax, promtool unit tests, references."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import require_binary

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "config" / "prometheus"
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "driftwatch.json"
ALERTS = [
    "DriftwatchDown",
    "DriftMonitorStale",
    "FeatureDriftCritical",
    "DatasetDriftCritical",
    "FallbackModelActive",
    "AlertDeliveryFailing",
]


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    """Run a checker; fail with its output unless it exits 0."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def rule_groups() -> list[dict]:
    return yaml.safe_load((PROMETHEUS / "driftwatch-rules.yml").read_text())["groups"]


@pytest.mark.integration
def test_promtool_check_rules() -> None:
    """`promtool check rules` accepts the rule file, which defines every alert the issue asks for."""
    output = run(require_binary("promtool"), "check", "rules", PROMETHEUS / "driftwatch-rules.yml")
    assert "SUCCESS" in output
    alerts = [rule["alert"] for group in rule_groups() for rule in group["rules"] if "alert" in rule]
    assert sorted(alerts) == sorted(ALERTS)


@pytest.mark.integration
def test_promtool_test_rules_covers_every_alert_firing_and_not() -> None:
    """`promtool test rules` passes, and tests every alert both firing and silent."""
    output = run(require_binary("promtool"), "test", "rules", "driftwatch-rules.test.yml", cwd=PROMETHEUS)
    assert "SUCCESS" in output
    tests = yaml.safe_load((PROMETHEUS / "driftwatch-rules.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in ALERTS:
        assert any(c["alertname"] == alert and c.get("exp_alerts") for c in cases), f"{alert} never fires"
        assert any(c["alertname"] == alert and not c.get("exp_alerts") for c in cases), f"{alert} never silent"


@pytest.mark.integration
def test_promtool_check_config(tmp_path: Path) -> None:
    """`promtool check config` accepts prometheus.yml with its rule file beside it."""
    for name in ("prometheus.yml", "driftwatch-rules.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    output = run(require_binary("promtool"), "check", "config", tmp_path / "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in output
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == ["driftwatch"]


@pytest.mark.integration
def test_amtool_check_config() -> None:
    """`amtool check-config` accepts the example Alertmanager config, which routes to a webhook."""
    run(require_binary("amtool"), "check-config", ROOT / "config" / "alertmanager" / "alertmanager.yml")
    config = yaml.safe_load((ROOT / "config" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers[config["route"]["receiver"]]["webhook_configs"][0]["url"].startswith("http")


def test_dashboard_loads_with_uid_and_monitor_variable() -> None:
    """The dashboard JSON loads, has uid driftwatch, the monitor variable, and queries in every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "driftwatch"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["monitor"]["query"]["query"] == "label_values(driftwatch_monitor_up, monitor)"
    assert variables["monitor"]["definition"] == "label_values(driftwatch_monitor_up, monitor)"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    uids = {t["datasource"]["uid"] for p in panels for t in p["targets"]}
    provisioned = yaml.safe_load((ROOT / "config/grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert uids == {d["uid"] for d in provisioned["datasources"]} == {"prometheus"}
    titles = " ".join(p["title"] for p in panels).lower()
    for needed in (
        "psi",
        "ks",
        "top drifted",
        "drift share",
        "rows",
        "last success",
        "duration",
        "failures",
        "model",
        "outbox",
        "notifications",
    ):
        assert needed in titles, needed


def test_docker_compose_parses_and_references_existing_files() -> None:
    """docker-compose.yml is YAML whose bind mounts and build context exist, with the four services."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"driftwatch", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert (ROOT / services["driftwatch"]["build"] / "Dockerfile").is_file()
    assert "0.0.0.0" in services["driftwatch"]["command"]
    mounts = [v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if v.startswith(".")]
    assert len(mounts) >= 4
    for source in mounts:
        assert (ROOT / source).exists(), source
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert named <= set(compose.get("volumes") or {})
    # The files the containers are pointed at are the ones in the mounted folders.
    prometheus = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["driftwatch:9108"]
    am = yaml.safe_load((ROOT / "config/alertmanager/alertmanager.yml").read_text())
    receiver_host = re.match(r"http://([^:/]+)", am["receivers"][0]["webhook_configs"][0]["url"]).group(1)
    assert receiver_host in services
    provider = yaml.safe_load((ROOT / "config/grafana/provisioning/dashboards/driftwatch.yaml").read_text())
    assert any(
        v.endswith(":" + provider["providers"][0]["options"]["path"] + ":ro") for v in services["grafana"]["volumes"]
    )
