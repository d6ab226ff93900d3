"""Prometheus exposition of fallback switching: active version, fallback/pinned flags, switches, actuation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class ModelMetrics:
    """One model as /metrics shows it."""

    model: str
    versions: Sequence[str]  # primary first
    active: str
    pinned: bool
    switches: Mapping[str, int] = field(default_factory=dict)  # direction -> count
    actuation: Mapping[str, bool] = field(default_factory=dict)  # actuator -> confirmed


class ModelCollector(Collector):
    """`driftwatch_model_active`, `_fallback_active`, `_pinned`, `_switches_total`, `_actuation_confirmed`."""

    def __init__(self, snapshot: Callable[[], Sequence[ModelMetrics]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "driftwatch_model_active", "1 for the model version serving traffic, else 0.", labels=["model", "version"]
        )
        fallback = GaugeMetricFamily(
            "driftwatch_model_fallback_active", "1 while a fallback version is active.", labels=["model"]
        )
        pinned = GaugeMetricFamily("driftwatch_model_pinned", "1 while the model is pinned by hand.", labels=["model"])
        switches = CounterMetricFamily(
            "driftwatch_model_switches",
            "Model switches by direction (fallback, restore), dry runs excluded.",
            labels=["model", "direction"],
        )
        actuation = GaugeMetricFamily(
            "driftwatch_model_actuation_confirmed",
            "1 when the actuator confirmed the current route, else 0.",
            labels=["model", "actuator"],
        )
        for m in self._snapshot():
            for version in m.versions:
                active.add_metric([m.model, version], float(version == m.active))
            fallback.add_metric([m.model], float(m.active != m.versions[0]))
            pinned.add_metric([m.model], float(m.pinned))
            for direction in ("fallback", "restore"):
                switches.add_metric([m.model, direction], m.switches.get(direction, 0))
            for actuator, confirmed in m.actuation.items():
                actuation.add_metric([m.model, actuator], float(confirmed))
        yield from (active, fallback, pinned, switches, actuation)
