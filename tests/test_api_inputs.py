"""Every input of the HTTP API is validated: bad bodies, fields, ids and sizes are a 4xx JSON error, never a 500."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import write_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http import FakeDaemon, TestClient, statuses

from driftwatch.cli import main
from driftwatch.errors import ModelSwitchError
from driftwatch.runtime.api_alerts import alert_routes
from driftwatch.runtime.api_models import model_routes
from driftwatch.runtime.http import MAX_BODY_BYTES, create_app
from driftwatch.runtime.store import Store

TOKEN = "t0ken"
AUTH = {"authorization": f"Bearer {TOKEN}"}
DEEP = b"[" * 100_000 + b"]" * 100_000
SILENCE = {"matchers": {"monitor": "payments"}, "duration": "2h"}


class FakeAlerting:
    """What the alert routes read from Alerting: no alert states."""

    def states(self) -> dict[str, Any]:
        return {}


@dataclass
class FakeModels:
    """What the model routes call on Models, recording each call and the thread it ran on."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    on_event_loop: list[bool] = field(default_factory=list)

    def names(self) -> list[str]:
        return ["churn"]

    def view(self, name: str) -> dict[str, Any]:
        return {"model": name}

    def history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        return []

    def _record(self, action: str, **kwargs: Any) -> dict[str, Any]:
        try:
            asyncio.get_running_loop()
            self.on_event_loop.append(True)
        except RuntimeError:
            self.on_event_loop.append(False)
        kwargs.pop("now")
        self.calls.append((action, kwargs))
        return {"changed": True, "message": action, "model": {"model": kwargs["name"]}}

    def switch(self, name: str, to: str, **kwargs: Any) -> dict[str, Any]:
        if to not in ("v2", "rules"):
            raise ModelSwitchError(f"model {name!r} has no version {to!r}")
        return self._record("switch", name=name, to=to, **kwargs)

    def restore(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return self._record("restore", name=name, **kwargs)

    def unpin(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return self._record("unpin", name=name, **kwargs)


@dataclass
class Api:
    client: TestClient
    store: Store
    models: FakeModels


@contextmanager
def api_at(path: Path) -> Iterator[Api]:
    """The full API (core, alerts, models) over a fake daemon with an API token, a real store and fake models."""
    daemon, models = FakeDaemon(statuses()), FakeModels()
    daemon.api_token = TOKEN
    with Store(path / "state.db") as store:
        routes = [*alert_routes(daemon, FakeAlerting(), store), *model_routes(daemon, models)]  # type: ignore[arg-type]
        with TestClient(create_app(daemon, routes), raise_server_exceptions=False) as client:
            yield Api(client, store, models)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The API over a fresh store."""
    with api_at(tmp_path) as value:
        yield value


def assert_json_error(response: Any, status: int, *words: str) -> str:
    """`response` is `status` with a one-line JSON error containing `words`; returns the error."""
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert isinstance(error, str) and "\n" not in error and len(error) < 500, error
    assert all(word in error for word in words), error
    return error


# --- POST /api/v1/silences ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(DEEP, ["nested too deeply"], id="deep-array"),
        pytest.param(b'{"comment": ' + DEEP + b"}", ["nested too deeply"], id="deep-in-field"),
        pytest.param({**SILENCE, "duration": "99999999999d"}, ["at most 365d"], id="duration-overflows-timedelta"),
        pytest.param({**SILENCE, "duration": "9999999d"}, ["at most 365d"], id="duration-overflows-datetime"),
        pytest.param({**SILENCE, "duration": "366d"}, ["at most 365d"], id="duration-over-a-year"),
        pytest.param(
            {**SILENCE, "duration": "9" * 5000 + "s"}, ["'duration' is longer than 64 bytes"], id="duration-huge-text"
        ),
        pytest.param(
            {**SILENCE, "duration": 7200}, ["'duration' must be a string, got a number"], id="duration-number"
        ),
        pytest.param({**SILENCE, "duration": "0s"}, ["not in the future"], id="duration-zero"),
        pytest.param(
            {"matchers": {"monitor": "m"}, "until": "9999-12-31T23:59:59"}, ["at most 365d"], id="until-year-9999"
        ),
        pytest.param(
            {"matchers": {"monitor": "m"}, "until": "0001-01-01T00:00:00+01:00"},
            ["until"],
            id="until-before-year-1-in-utc",
        ),
        pytest.param({"matchers": {"monitor": "m"}, "until": "soon"}, ["ISO-8601"], id="until-not-a-time"),
        pytest.param({"matchers": {"monitor": "m"}, "until": 1e308}, ["must be a string"], id="until-number"),
        pytest.param({**SILENCE, "until": "2030-01-01T00:00:00"}, ["exactly one"], id="until-and-duration"),
        pytest.param(
            {**SILENCE, "comment": {"text": "x"}}, ["'comment' must be a string, got an object"], id="comment-object"
        ),
        pytest.param({**SILENCE, "comment": 5}, ["'comment' must be a string, got a number"], id="comment-number"),
        pytest.param({**SILENCE, "comment": "x" * 1025}, ["longer than 1024 bytes"], id="comment-over-1kb"),
        pytest.param({**SILENCE, "comment": "é" * 513}, ["longer than 1024 bytes"], id="comment-over-1kb-utf8"),
        pytest.param(
            b'{"matchers": {"monitor": "m"}, "duration": "1h", "comment": "\\ud800"}',
            ["not valid Unicode"],
            id="comment-lone-surrogate",
        ),
        pytest.param(
            {"matchers": {"monitor": ["m"]}, "duration": "1h"}, ["'monitor' must be a string"], id="matcher-array"
        ),
        pytest.param({"matchers": {"monitor": None}, "duration": "1h"}, ["at least one"], id="matchers-all-null"),
        pytest.param({"matchers": {"team": "x"}, "duration": "1h"}, ["at least one"], id="matcher-unknown"),
        pytest.param({"matchers": "monitor=m", "duration": "1h"}, ["at least one"], id="matchers-string"),
        pytest.param({**SILENCE, "creator": "me"}, ["unknown key 'creator'"], id="unknown-key"),
        pytest.param({**SILENCE, "x" * 10_000: 1}, ["unknown key", "..."], id="unknown-huge-key"),
        pytest.param([SILENCE], ["expected a JSON object, got an array"], id="array"),
        pytest.param(b"", ["empty body"], id="empty"),
        pytest.param(b"{'single': 'quotes'}", ["invalid JSON"], id="not-json"),
        pytest.param(b"\xff\xfe\x00", ["invalid JSON"], id="not-utf8"),
        pytest.param(b'{"comment": ' + b"1" * 5000 + b"}", ["invalid JSON"], id="int-over-4300-digits"),
    ],
)
def test_bad_silence_is_400(api: Api, body: Any, words: list[str]):
    """A bad silence body is a 400 with a one-line error, and nothing is stored."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = api.client.post("/api/v1/silences", content=content, headers=AUTH)
    assert_json_error(response, 400, *words)
    assert api.store.active_silences(datetime.now(UTC)) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({**SILENCE, "comment": "x" * 1024}, {"comment": "x" * 1024}, id="comment-exactly-1kb"),
        pytest.param({**SILENCE, "duration": "365d"}, {"matchers": {"monitor": "payments"}}, id="a-year"),
        pytest.param({**SILENCE, "comment": None, "until": None}, {"comment": ""}, id="null-is-absent"),
        pytest.param(
            {"matchers": {"feature": "age", "monitor": None}, "duration": "1h"},
            {"matchers": {"feature": "age"}},
            id="null-matcher-ignored",
        ),
    ],
)
def test_good_silence_is_201(api: Api, body: dict[str, Any], expected: dict[str, Any]):
    """Valid silences at the limits are stored and returned."""
    response = api.client.post("/api/v1/silences", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    assert expected.items() <= response.json().items()


def test_silence_until_is_stored_in_utc(api: Api):
    """An `until` with an offset is converted to UTC."""
    until = (datetime.now(UTC) + timedelta(hours=3)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    response = api.client.post(
        "/api/v1/silences", json={"matchers": {"monitor": "m"}, "until": until.isoformat()}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    assert datetime.fromisoformat(response.json()["until"]) == until
    assert response.json()["until"].endswith("+00:00")


# --- DELETE /api/v1/silences/{id} -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "silence_id",
    [
        pytest.param("99999999999999999999999", id="over-int64"),
        pytest.param(str(2**63), id="int64-max-plus-one"),
        pytest.param(str(2**63 - 1), id="int64-max"),
        pytest.param("1" * 5000, id="over-4300-digits"),
        pytest.param("0", id="zero"),
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="not-a-number"),
        pytest.param("%C2%B2", id="unicode-digit"),
        pytest.param("1.0", id="float"),
    ],
)
def test_delete_unknown_or_impossible_silence_is_404(api: Api, silence_id: str):
    """Ids that are no silence, out of SQLite's range or not numbers are a 404 JSON error."""
    assert_json_error(api.client.delete(f"/api/v1/silences/{silence_id}", headers=AUTH), 404, "no silence")


def test_delete_silence(api: Api):
    """A stored silence is deleted once; the second delete is a 404."""
    created = api.client.post("/api/v1/silences", json=SILENCE, headers=AUTH).json()
    response = api.client.delete(f"/api/v1/silences/{created['id']}", headers=AUTH)
    assert (response.status_code, response.json()) == (200, {"status": "deleted"})
    assert_json_error(api.client.delete(f"/api/v1/silences/{created['id']}", headers=AUTH), 404)


# --- POST /api/v1/models/{name}/switch|restore|unpin ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body", "words"),
    [
        pytest.param("switch", DEEP, ["nested too deeply"], id="switch-deep"),
        pytest.param("switch", b'{"to": ' + DEEP + b"}", ["nested too deeply"], id="switch-deep-field"),
        pytest.param(
            "switch", {"to": "v2", "pin": "false"}, ["'pin' must be true or false, got a string"], id="pin-string-false"
        ),
        pytest.param("switch", {"to": "v2", "pin": 0}, ["'pin' must be true or false, got a number"], id="pin-zero"),
        pytest.param("switch", {"to": "v2", "pin": []}, ["'pin' must be true or false"], id="pin-array"),
        pytest.param("switch", {}, ["'to'", "required"], id="to-missing"),
        pytest.param("switch", {"to": 2}, ["'to' must be a string"], id="to-number"),
        pytest.param("switch", {"to": ["v2"]}, ["'to' must be a string"], id="to-array"),
        pytest.param("switch", {"to": "v" * 257}, ["'to' is longer than 256 bytes"], id="to-too-long"),
        pytest.param("switch", {"to": "v9"}, ["no version 'v9'"], id="to-unknown-version"),
        pytest.param("switch", {"to": "v2", "reason": {"why": 1}}, ["'reason' must be a string"], id="reason-object"),
        pytest.param("switch", {"to": "v2", "reason": "r" * 1025}, ["longer than 1024 bytes"], id="reason-over-1kb"),
        pytest.param("switch", {"to": "v2", "actor": True}, ["'actor' must be a string"], id="actor-boolean"),
        pytest.param("switch", {"to": "v2", "force": True}, ["unknown key 'force'"], id="unknown-key"),
        pytest.param("switch", "v2", ["expected a JSON object, got a string"], id="string-body"),
        pytest.param("restore", DEEP, ["nested too deeply"], id="restore-deep"),
        pytest.param("restore", {"reason": 1}, ["'reason' must be a string"], id="restore-reason-number"),
        pytest.param("restore", {"to": "v2"}, ["unknown key 'to'"], id="restore-unknown-key"),
        pytest.param("unpin", {"actor": ["cli"]}, ["'actor' must be a string"], id="unpin-actor-array"),
        pytest.param("unpin", b"nul", ["invalid JSON"], id="unpin-not-json"),
    ],
)
def test_bad_model_action_is_400(api: Api, action: str, body: Any, words: list[str]):
    """A bad switch/restore/unpin body is a 400 with a one-line error, and the model is not touched."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = api.client.post(f"/api/v1/models/churn/{action}", content=content, headers=AUTH)
    assert_json_error(response, 400, *words)
    assert api.models.calls == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"to": "v2"}, {"to": "v2", "pin": True, "reason": "manual switch", "actor": "api"}, id="defaults"),
        pytest.param({"to": "v2", "pin": False}, {"pin": False}, id="pin-false"),
        pytest.param(
            {"to": "v2", "pin": None, "reason": None}, {"pin": True, "reason": "manual switch"}, id="null-is-absent"
        ),
        pytest.param(
            {"to": "rules", "actor": "cli", "reason": "r" * 1024},
            {"actor": "cli", "reason": "r" * 1024},
            id="cli-at-the-limit",
        ),
        pytest.param({"to": "v2", "actor": "mallory"}, {"actor": "api"}, id="other-actor-is-api"),
    ],
)
def test_switch_passes_typed_fields(api: Api, body: dict[str, Any], expected: dict[str, Any]):
    """A valid switch calls Models.switch with real booleans and strings, off the event loop."""
    response = api.client.post("/api/v1/models/churn/switch", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    [(action, kwargs)] = api.models.calls
    assert action == "switch" and expected.items() <= kwargs.items()
    assert type(kwargs["pin"]) is bool
    assert api.models.on_event_loop == [False]


@pytest.mark.parametrize("action", [pytest.param("restore", id="restore"), pytest.param("unpin", id="unpin")])
def test_restore_and_unpin_accept_an_empty_body(api: Api, action: str):
    """Restore and unpin need no body, and run off the event loop."""
    response = api.client.post(f"/api/v1/models/churn/{action}", headers=AUTH)
    assert response.status_code == 200, response.text
    assert [call[0] for call in api.models.calls] == [action]
    assert api.models.on_event_loop == [False]


def test_unknown_model_is_404_before_the_body_is_read(api: Api):
    """An unknown model is a 404 whatever the body; a huge name is cut in the message."""
    assert_json_error(api.client.post("/api/v1/models/nope/switch", content=DEEP, headers=AUTH), 404, "'nope'")
    assert_json_error(api.client.post(f"/api/v1/models/{'n' * 5000}/switch", json={}, headers=AUTH), 404, "...")


# --- body size ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/v1/silences", id="silences"),
        pytest.param("/api/v1/models/churn/switch", id="switch"),
        pytest.param("/-/reload", id="reload"),
    ],
)
@pytest.mark.parametrize("chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")])
def test_body_over_1mb_is_413(api: Api, path: str, chunked: bool):
    """A body over 1 MiB is a 413, declared by Content-Length or counted while a chunked body is read."""
    big = b" " * (MAX_BODY_BYTES + 1)
    content: Any = iter([big[:65536]] + [big[i : i + 65536] for i in range(65536, len(big), 65536)]) if chunked else big
    response = api.client.post(path, content=content, headers=AUTH)
    if chunked and path == "/-/reload":  # reload never reads its body: nothing to count
        assert response.status_code == 200
    else:
        assert_json_error(response, 413, "request body over the limit of 1048576 bytes")
    assert api.models.calls == []


def test_body_of_exactly_1mb_is_read(api: Api):
    """A body of exactly 1 MiB (a silence padded with spaces) is accepted."""
    body = json.dumps(SILENCE).encode()
    response = api.client.post("/api/v1/silences", content=body + b" " * (MAX_BODY_BYTES - len(body)), headers=AUTH)
    assert response.status_code == 201, response.text


# --- fuzz -----------------------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.just("\ud800"),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
SOON = st.builds(
    lambda ahead, zone: (datetime.now(UTC) + ahead).astimezone(zone).isoformat(),
    st.timedeltas(timedelta(days=-1), timedelta(days=400)),
    OFFSETS,
)
TIMES = SOON | st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.none() | OFFSETS).map(
    datetime.isoformat
)
DURATIONS = st.builds("{}{}".format, st.integers(0, 400) | st.integers(0, 10**12), st.sampled_from("dhms")) | (
    st.sampled_from(["1h30m", "365d", "366d", "0s", "9999999d", "99999999999d"])
)
MATCHERS = st.fixed_dictionaries(
    {}, optional={name: JSON | st.text(max_size=3) for name in ("monitor", "feature", "alertname")}
)


@st.composite
def silence_bodies(draw: st.DrawFn) -> Any:
    """Mostly well-shaped silences (matchers, one of until/duration, a comment) whose fields take random values;
    sometimes any JSON at all."""
    matchers = draw(MATCHERS | JSON) if draw(st.integers(0, 3)) == 3 else {"monitor": draw(st.text(max_size=3))}
    body = {"matchers": matchers}
    key = draw(st.sampled_from(["until", "duration"]))
    body[key] = draw(st.one_of({"until": TIMES, "duration": DURATIONS}[key], JSON))
    if draw(st.booleans()):
        body["comment"] = draw(st.text(max_size=1100) | JSON)
    if draw(st.integers(0, 9)) == 9:
        body[draw(st.sampled_from(["until", "duration", "extra"]))] = draw(JSON)
    return body if draw(st.integers(0, 3)) < 3 else draw(JSON)


ACTION_FIELDS = {"switch": ("to", "pin", "reason", "actor"), "restore": ("reason", "actor"), "unpin": ("actor",)}


@st.composite
def model_actions(draw: st.DrawFn) -> tuple[str, Any]:
    """An action and a mostly well-shaped body for it whose fields take random values; sometimes any JSON at all."""
    action = draw(st.sampled_from(sorted(ACTION_FIELDS)))
    good = {
        "to": st.sampled_from(["v2", "rules", "v9"]),
        "pin": st.booleans(),
        "reason": st.text(max_size=1100),
        "actor": st.just("cli"),
    }
    body = {"to": draw(good["to"] | JSON)} if action == "switch" else {}
    for key in ACTION_FIELDS[action]:
        if key not in body and draw(st.booleans()):
            body[key] = draw(good[key] | JSON)
    if draw(st.integers(0, 9)) == 9:
        body[draw(st.sampled_from(["to", "pin", "extra"]))] = draw(JSON)
    return action, body if draw(st.integers(0, 3)) < 3 else draw(JSON)


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API for every fuzz example (hypothesis runs many examples per test)."""
    with api_at(tmp_path_factory.mktemp("fuzz")) as value:
        yield value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=silence_bodies())
def test_fuzzed_silences_never_5xx(fuzzed_api: Api, body: Any):
    """Any JSON body to POST /api/v1/silences is a 201 or a one-line 400, never a 5xx."""
    response = fuzzed_api.client.post("/api/v1/silences", content=json.dumps(body).encode(), headers=AUTH)
    if response.status_code != 201:
        assert_json_error(response, 400)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action_body=model_actions())
def test_fuzzed_model_actions_never_5xx(fuzzed_api: Api, action_body: tuple[str, Any]):
    """Any JSON body to POST /api/v1/models/churn/{switch,restore,unpin} is a 200 or a one-line 400, never a 5xx."""
    action, body = action_body
    response = fuzzed_api.client.post(f"/api/v1/models/churn/{action}", content=json.dumps(body).encode(), headers=AUTH)
    if response.status_code != 200:
        assert_json_error(response, 400)
    else:
        assert all(type(kwargs.get("pin", False)) is bool for _, kwargs in fuzzed_api.models.calls)


# --- the real daemon ------------------------------------------------------------------------------------------------


def raw_http(port: int, head: bytes, body_chunks: Sequence[bytes] = ()) -> tuple[int, Any]:
    """Send `head` and `body_chunks` as they are on a fresh connection; the status and JSON body of the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def test_real_daemon_refuses_big_and_deep_bodies(tmp_path: Path):
    """Through uvicorn: 413 for a declared or chunked body over 1 MiB, 400 for deep nesting; the daemon stays up."""
    write_dataset(tmp_path)
    port = free_port()
    config = tmp_path / "driftwatch.yaml"
    config.write_text(f"""
server: {{host: 127.0.0.1, port: {port}, api_token: "{TOKEN}"}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
  churn-inputs:
    model: churn
    reference: {{path: reference/train.parquet}}
    source: files
    schedule: {{every: 1h}}
    window: 1h
    features: {{numeric: [age, income], categorical: [plan]}}
models:
  churn:
    primary: churn-v3
    fallbacks: [churn-v2]
    actuators: [{{kind: file, path: var/routes/churn.json}}]
""")
    daemon = DaemonProcess(config, port)
    try:
        daemon.wait_ready()
        auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
        declared = (
            b"POST /api/v1/silences HTTP/1.1\r\nHost: x\r\n"
            + auth
            + f"Content-Length: {50 * MAX_BODY_BYTES}\r\n\r\n".encode()
        )
        status, body = raw_http(port, declared)  # answered before a byte of the 50 MB body is sent
        assert (status, body) == (413, {"error": "request body over the limit of 1048576 bytes"})
        chunk = b" " * 65536
        chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BODY_BYTES // len(chunk) + 1)
        chunked = (
            b"POST /api/v1/models/churn/switch HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        assert raw_http(port, chunked, chunks) == (413, {"error": "request body over the limit of 1048576 bytes"})
        for path in ("/api/v1/silences", "/api/v1/models/churn/switch"):
            status, body = raw_http(
                port,
                f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
                + auth
                + f"Content-Length: {len(DEEP)}\r\nConnection: close\r\n\r\n".encode(),
                [DEEP],
            )
            assert status == 400 and "nested too deeply" in body["error"], (path, body)
        assert daemon.get("/healthz")[0] == 200
        assert daemon.json("/api/v1/models/churn")["active"] == "churn-v3"
        assert "Traceback" not in daemon.log()
    finally:
        assert daemon.stop() == 0


# --- the CLI against a reply that is not the daemon's JSON ----------------------------------------------------------


@contextmanager
def replying(status: int, content_type: str, body: bytes) -> Iterator[str]:
    """A loopback HTTP server answering every request with `status`, `content_type` and `body`; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


PROXY_502 = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"


@pytest.mark.parametrize(
    ("status", "content_type", "body", "args", "words"),
    [
        pytest.param(
            502,
            "text/html",
            PROXY_502,
            ["switch", "churn", "--to", "v2"],
            ["502 Bad Gateway", "text/html"],
            id="proxy-html-502",
        ),
        pytest.param(
            200, "text/html", b"<html>login</html>", ["status"], ["200 OK", "not the daemon's JSON"], id="html-200"
        ),
        pytest.param(
            503,
            "application/json",
            b'{"error": "not\\nready"}',
            ["history", "churn"],
            ["503 Service Unavailable: not ready"],
            id="json-error",
        ),
        pytest.param(
            500,
            "application/json",
            b"[1, 2]",
            ["restore", "churn"],
            ["500", "without an error message"],
            id="json-without-error",
        ),
        pytest.param(502, "", b"", ["unpin", "churn"], ["502", "no content type"], id="empty-502"),
    ],
)
def test_cli_reports_a_bad_reply_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    content_type: str,
    body: bytes,
    args: list[str],
    words: list[str],
):
    """`driftwatch models ...` gives exit 2 and one line, no traceback, for an error or non-JSON reply."""
    config = tmp_path / "driftwatch.yaml"
    config.write_text('server: {api_token: "t"}\nsources: {}\nmonitors: {}\n')
    with replying(status, content_type, body) as url:
        code = main(["models", args[0], "-c", str(config), "--url", url, *args[1:]])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"driftwatch: error: {url}/api/v1/models"), captured.err
    assert all(word in captured.err for word in words), captured.err
