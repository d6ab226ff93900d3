"""Actuators carry a model's route to the serving layer, behind one capability, `Actuator`: file and webhook.

The route is the JSON document serving layers read (`{"model", "active", "primary", "fallbacks", "pinned",
"since", "reason", "state_version"}`). The run service stores a route change and the actuators' `outbox_rows`
in one transaction, then calls `apply`:

- `FileActuator` writes the route file durably in `apply` (temporary file, fsync, rename, fsync of the folder,
  mode 0644 so a serving layer running as another user can read it); it has no outbox rows.
- `WebhookActuator` has one outbox row per route version (a stable delivery id, so a restart never sends a
  version twice); its `notifier` (a signed `WebhookNotifier`) delivers it with the outbox's retries.

`status` says whether the actuator has confirmed the current route: "confirmed", "pending" or "failed: ...".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from driftwatch.outputs.files import write_bytes_durably
from driftwatch.outputs.notifiers import Notifier, WebhookNotifier
from driftwatch.outputs.outbox import RetryPolicy

log = logging.getLogger("driftwatch.actuators")

#: One outbox row: (delivery id, sink, JSON-ready event).
OutboxRow = tuple[str, str, dict[str, Any]]


class DeliveryRecord(Protocol):
    """What an actuator reads of one outbox row."""

    @property
    def status(self) -> str: ...  # "pending", "delivered" or "dead"

    @property
    def last_error(self) -> str | None: ...


class DeliveryLookup(Protocol):
    """The outbox rows by delivery id (the state store)."""

    def delivery(self, delivery_id: str) -> DeliveryRecord | None: ...


class Actuator(Protocol):
    """A way a model's route reaches the serving layer."""

    @property
    def label(self) -> str:
        """`kind:index`, as the API's `actuation` field and the metrics name it."""
        ...

    def outbox_rows(self, route: Mapping[str, Any]) -> list[OutboxRow]:
        """The outbox rows that carry `route` (written in the transaction that stores it)."""
        ...

    def apply(self, route: Mapping[str, Any]) -> None:
        """Carry `route` out directly, after it is stored (retried on the next call when it failed)."""
        ...

    def status(self, route: Mapping[str, Any], outbox: DeliveryLookup) -> str:
        """ "confirmed", "pending" or "failed: <error>" for `route`."""
        ...

    def sinks(self) -> dict[str, tuple[Notifier, RetryPolicy]]:
        """The outbox sinks this actuator delivers through, by sink name (none for a direct actuator)."""
        ...


def actuator_sink(model: str, index: int) -> str:
    """The outbox sink name of a model's webhook actuator."""
    return f"actuator:{model}:{index}"


def route_delivery_id(model: str, index: int, state_version: int) -> str:
    """The Standard Webhooks message id of one route version to one actuator."""
    return "msg_" + hashlib.sha256(f"route:{model}:{index}:{state_version}".encode()).hexdigest()[:32]


def route_bytes(route: Mapping[str, Any]) -> bytes:
    """The route file's content: indented JSON and a final newline."""
    return (json.dumps(dict(route), indent=2) + "\n").encode()


class FileActuator:
    """Keep `path` holding the current route as JSON (mode 0644, durable)."""

    kind = "file"

    def __init__(self, model: str, index: int, path: Path) -> None:
        self.model = model
        self.label = f"{self.kind}:{index}"
        self.path = path
        self._status = "pending"

    def __repr__(self) -> str:
        return f"FileActuator({self.model!r}, {self.label!r}, {str(self.path)!r})"

    def outbox_rows(self, route: Mapping[str, Any]) -> list[OutboxRow]:
        return []

    def apply(self, route: Mapping[str, Any]) -> None:
        """Rewrite the file unless it already holds `route`; remember a failure for `status`."""
        try:
            current = json.loads(self.path.read_text()) if self.path.exists() else None
            if current != dict(route):
                write_bytes_durably(self.path, route_bytes(route))
            self._status = "confirmed"
        except (OSError, ValueError) as err:
            self._status = f"failed: {err}"
            log.error("model %s: cannot write route file %s: %s", self.model, self.path, err)

    def status(self, route: Mapping[str, Any], outbox: DeliveryLookup) -> str:
        return self._status

    def sinks(self) -> dict[str, tuple[Notifier, RetryPolicy]]:
        return {}


class WebhookActuator:
    """POST each route version (signed when `secret` is set) through the outbox, with its retries."""

    kind = "webhook"

    def __init__(
        self, model: str, index: int, url: str, *, secret: str | None, timeout: float, retry: RetryPolicy
    ) -> None:
        self.model = model
        self.index = index
        self.label = f"{self.kind}:{index}"
        self.sink = actuator_sink(model, index)
        self._notifier = WebhookNotifier(self.sink, url, secret, timeout)
        self._retry = retry

    def __repr__(self) -> str:
        return f"WebhookActuator({self.model!r}, {self.label!r}, {self._notifier!r})"

    def outbox_rows(self, route: Mapping[str, Any]) -> list[OutboxRow]:
        version = int(route["state_version"])
        return [(route_delivery_id(self.model, self.index, version), self.sink, dict(route))]

    def apply(self, route: Mapping[str, Any]) -> None:
        """Nothing to do: the outbox delivers the rows of `outbox_rows`."""

    def status(self, route: Mapping[str, Any], outbox: DeliveryLookup) -> str:
        delivery = outbox.delivery(route_delivery_id(self.model, self.index, int(route["state_version"])))
        if delivery is None:
            return "confirmed"  # this route version needed no delivery (e.g. a dry-run decision)
        return {"delivered": "confirmed", "dead": f"failed: {delivery.last_error}"}.get(delivery.status, "pending")

    def sinks(self) -> dict[str, tuple[Notifier, RetryPolicy]]:
        return {self.sink: (self._notifier, self._retry)}
