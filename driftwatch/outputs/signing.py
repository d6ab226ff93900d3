"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign outgoing bodies, verify incoming ones.

The signed content is `f"{msg_id}.{timestamp}.".encode() + body`; the signature header holds one or more
space-separated `v1,<base64 HMAC-SHA256>` values. A secret written `whsec_<base64>` is base64-decoded to the
key; any other string is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"

__all__ = ["ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "signature_headers", "signing_key", "verify"]


def signing_key(secret: str) -> bytes:
    """The HMAC key of `secret`; raises ValueError on a `whsec_` secret that is not valid base64."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error as err:
            raise ValueError("webhook secret starts with 'whsec_' but the rest is not valid base64") from err
    return secret.encode("utf-8")


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value `v1,<base64 HMAC-SHA256>` of one message."""
    return _signature(signing_key(secret), msg_id, timestamp, body)


def signature_headers(secret: str | None, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and (with a secret) `webhook-signature` for sending `body` now."""
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(stamp)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, msg_id, stamp, body)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """True if one of the `v1` signatures matches and the timestamp is within `tolerance` seconds of `now`."""
    msg_id = _header(headers, ID_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER)
    if not msg_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
        key = signing_key(secret)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _signature(key, msg_id, timestamp, body).encode("ascii")
    matched = False
    for candidate in signatures.split():
        # Compare every candidate (no early exit), each in constant time.
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched
