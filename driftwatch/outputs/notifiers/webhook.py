"""Generic webhook sink: the notification as JSON, signed per Standard Webhooks when a secret is set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftwatch.outputs.notifiers.base import describe, dumps, post
from driftwatch.outputs.signing import signature_headers, signing_key


class WebhookNotifier:
    """POST the notification JSON to `url`; `webhook-id` is the delivery id, identical on every retry."""

    kind = "webhook"
    wants_refresh = False

    def __init__(self, name: str, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        if secret:
            signing_key(secret)  # fail early on a malformed whsec_ secret (the message does not show it)
        self.name = name
        self._url = url
        self._secret = secret or None
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"WebhookNotifier({describe(self.kind, self.name, self._url)}, signed={self._secret is not None})"

    def send(self, event: Mapping[str, Any], delivery_id: str) -> None:
        """POST `event`; the signature covers exactly the bytes sent and a fresh timestamp."""
        body = dumps(dict(event))
        headers = signature_headers(self._secret, delivery_id, body)
        post(
            describe(self.kind, self.name, self._url),
            self._url,
            body,
            timeout=self.timeout,
            headers=headers,
            secrets=[self._secret] if self._secret else [],
        )
