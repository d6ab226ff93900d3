"""Loopback HTTP receivers for delivery tests: record requests, fail on demand, verify signatures, go down."""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from driftwatch.outputs.signing import verify


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it, and the status it answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int
    verified: bool | None  # None when the receiver checks no signature

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on 127.0.0.1 in a thread; use as a context manager.

    `fail(n, status, retry_after=...)` makes the next `n` requests answer `status`; with `secret`, requests whose
    Standard Webhooks signature does not verify are answered 401. `stop()` then `start()` simulates an outage on
    the same port.
    """

    def __init__(self, *, secret: str | None = None, port: int = 0, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.requests: list[Received] = []
        self._port = port
        self._failures: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------------------

    def fail(self, count: int, status: int = 503, *, retry_after: str | None = None) -> Receiver:
        """Answer the next `count` requests with `status` (and a Retry-After header, if given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)
        return self

    def recover(self) -> None:
        """Forget the failures still planned: answer 2xx from now on."""
        with self._lock:
            self._failures.clear()

    def start(self) -> Receiver:
        """Listen (again) on the receiver's port."""
        if self._server is not None:
            raise RuntimeError("receiver already running")
        handler = self._handler_class()
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
                break
            except OSError as err:  # a restart right after stop may find the port still held for a moment
                if err.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"receiver-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; connections are refused until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what arrived ----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port (fixed after the first start)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self._port}"

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx."""
        return [request for request in self.requests if 200 <= request.status < 300]

    def accepted_ids(self) -> Counter[str]:
        """How many 2xx answers each `webhook-id` got."""
        return Counter(request.headers.get("webhook-id", "") for request in self.accepted())

    # --- the handler -----------------------------------------------------------------------------------------

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        verified = verify(self.secret, headers, body) if self.secret is not None else None
        with self._lock:
            status, extra = 200, {}
            if self._failures:
                status, retry_after = self._failures.pop(0)
                if retry_after is not None:
                    extra["Retry-After"] = retry_after
            elif verified is False:
                status = 401
            self.requests.append(Received(method, path, headers, body, status, verified))
        return status, extra

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                status, extra = receiver._respond("POST", self.path, headers, body)
                reply = b'{"ok":true}' if status < 300 else b'{"error":"nope"}'
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        return Handler


def sample_event(**overrides: Any) -> dict[str, Any]:
    """A firing FeatureDrift notification as the alert lifecycle produces it (fields overridable)."""
    event: dict[str, Any] = {
        "event": "alert.firing",
        "notification_id": "churn/age/FeatureDrift/2024-05-01T12:00:00+00:00/firing",
        "alertname": "FeatureDrift",
        "monitor": "churn",
        "subject": "age",
        "feature": "age",
        "status": "firing",
        "severity": "critical",
        "reason": "psi 0.31 above critical threshold 0.25",
        "started_at": "2024-05-01T12:00:00+00:00",
        "at": "2024-05-01T12:10:00+00:00",
        "details": {
            "statistics": {"psi": 0.3123, "ks": 0.18, "missing_share": 0.0},
            "thresholds": {"psi": {"warning": 0.1, "critical": 0.25}, "ks": 0.2},
            "window": {"start": "2024-05-01T11:00:00+00:00", "end": "2024-05-01T12:00:00+00:00"},
        },
        "links": {"report": "http://127.0.0.1:9108/api/v1/monitors/churn/report"},
    }
    event.update(overrides)
    return event


class BlackHole:
    """A loopback TCP listener that accepts connections and never answers (a hung database or receiver)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            self._accepted.append(conn)  # held open, never read from or written to

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        return len(self._accepted)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()
        for conn in self._accepted:
            conn.close()
