"""Real servers for integration tests: PostgreSQL, Prometheus, Alertmanager and a loopback webhook receiver.

Each one binds 127.0.0.1 on a free port, lives in a temporary directory, and is started and stopped by a context
manager with bounded waits. The binaries come from `require_binary`, so tests skip without them (fail in CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from conftest import free_port, require_binary

NOBODY = 65534


def ready(server: ServerProcess, url: str) -> bool:
    """Whether `url` answers 200; raises when `server` has exited."""
    server.check_alive()
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def wait_until(condition: Callable[[], bool], what: str, timeout: float, log: Callable[[], str] = str) -> None:
    """Poll `condition` (connection errors count as False) until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{log()}")


def http_json(url: str, body: Any = None, timeout: float = 10) -> Any:
    """GET `url` (POST `body` as JSON when given) and parse the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


class ServerProcess:
    """A server subprocess with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, args: list[str], log_path: Path, **kwargs: Any) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, **kwargs)

    def log(self) -> str:
        """The server's output so far (the last 5000 characters)."""
        return self.log_path.read_text(errors="replace")[-5000:]

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args[0]} exited with {self.proc.returncode}:\n{self.log()}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server(**settings: str) -> Iterator[str]:
    """A throwaway PostgreSQL (initdb in a temp dir, trust auth, loopback, free port); yields a psycopg URL.

    Runs as `nobody` when the tests run as root (postgres refuses root). `settings` become `-c name=value`.
    """
    initdb, postgres = require_binary("initdb"), require_binary("postgres")
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = [require_binary("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    root = Path(tempfile.mkdtemp(prefix="driftwatch-pg-"))  # not under tmp_path: its parents are private to root
    if as_user:
        os.chown(root, NOBODY, NOBODY)
    port = free_port()
    server = None
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(root / "data"), "-U", "dw", "--auth=trust"],
            check=True,
            capture_output=True,
            env={**os.environ, "HOME": str(root)},
            timeout=120,
        )
        options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        server = subprocess.Popen(
            [
                *as_user,
                postgres,
                "-D",
                str(root / "data"),
                "-p",
                str(port),
                "-k",
                str(root),
                "-h",
                "127.0.0.1",
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"postgresql+psycopg://dw:s3cret@127.0.0.1:{port}/postgres"
        engine = sa.create_engine(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                with engine.connect():
                    break
            except sa.exc.OperationalError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        engine.dispose()
        yield url
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


# --- webhook receiver ---------------------------------------------------------------------------------------


class WebhookReceiver:
    """A loopback HTTP server in a thread that answers 200 to every POST and keeps the JSON bodies."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.bodies.append(json.loads(body or b"null"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every Alertmanager webhook received so far."""
        with self._lock:
            return [alert for body in self.bodies for alert in (body or {}).get("alerts", [])]


# --- Alertmanager -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def alertmanager_server(workdir: Path, config: dict[str, Any]) -> Iterator[str]:
    """Real Alertmanager on a free loopback port with `config`, clustering off; yields its base URL."""
    binary = require_binary("alertmanager", "prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = ServerProcess(
        [
            binary,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        workdir / "alertmanager.log",
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(server, f"{base}/-/ready"), "Alertmanager /-/ready", 30, server.log)
        yield base
    finally:
        server.stop()


# --- Prometheus ---------------------------------------------------------------------------------------------


class Prometheus:
    """Client of a running Prometheus's HTTP API."""

    def __init__(self, base: str, server: ServerProcess) -> None:
        self.base = base
        self.server = server

    def api(self, path: str, **params: str) -> Any:
        """The `data` of GET /api/v1/`path`; raises AssertionError with Prometheus's error otherwise."""
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            answer = json.loads(err.read() or b"{}")
        if answer.get("status") != "success":
            raise AssertionError(f"{path} {params}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant-vector result of `expr` now (a scalar becomes one unlabelled sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]


@contextlib.contextmanager
def prometheus_server(workdir: Path, config: dict[str, Any], rule_files: dict[str, Any]) -> Iterator[Prometheus]:
    """Real Prometheus on a free loopback port with `config` and `rule_files` ({name: content}) in `workdir`."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    for name, content in rule_files.items():
        (workdir / name).write_text(yaml.safe_dump(content, sort_keys=False))
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    server = ServerProcess(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        workdir / "prometheus.log",
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(server, f"{base}/-/ready"), "Prometheus /-/ready", 30, server.log)
        yield Prometheus(base, server)
    finally:
        server.stop()
