"""A headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests of the web view.

Why this and not Playwright or Selenium: both want a browser or driver build of their own, downloaded at install
time; the DevTools protocol is Chromium's own, spoken over one websocket (`websocket-client`, pure Python), and it
gives what the tests assert on: the live DOM (`Runtime.evaluate`), every request the page makes
(`Network.requestWillBeSent`), console messages, JavaScript dialogs and security log entries, and screenshots at
any viewport size (`Emulation.setDeviceMetricsOverride`).

Chromium runs with a throw-away profile, with its own background traffic switched off, and with a host resolver
that resolves no name but 127.0.0.1, so a page that tried to reach another host would fail (and show up in the
recorded requests).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--hide-scrollbars",
    "--mute-audio",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
)


@dataclass
class Visit:
    """What one page load did: its URL, the requests it made, console output, dialogs and log entries."""

    url: str
    requests: list[str] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)


class Browser:
    """One headless Chromium with one page (tab); `open` loads a URL and records what the page did."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="driftwatch-chromium-"))
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._devtools_port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
                targets = json.loads(reply.read())
            page = next(t for t in targets if t.get("type") == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._id = 0
        self._events: list[dict[str, Any]] = []
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _devtools_port(self) -> int:
        """The port Chromium chose, from the DevToolsActivePort file of its profile."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode} at start")
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call one DevTools method and return its result (events arriving meanwhile are kept)."""
        self._id += 1
        ident = self._id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._take(message)
        raise TimeoutError(f"no answer to {method}")

    def _take(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening":  # answer it, or the page hangs
            self.ws.send(json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog", "params": {"accept": True}}))

    def _wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for event in self._events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            event = json.loads(self.ws.recv())
            if "method" in event:
                self._take(event)
                if event["method"] == method:
                    return event
        raise TimeoutError(f"no {method} event")

    def headers(self, headers: dict[str, str]) -> None:
        """Send these HTTP headers with every request from now on (e.g. Authorization)."""
        self.send("Network.setExtraHTTPHeaders", {"headers": headers})

    def open(self, url: str, width: int = 1280, height: int = 900, mobile: bool = False) -> Visit:
        """Load `url` in a viewport of this size (a phone's with `mobile`) and wait for its load event."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        self._events = []
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise RuntimeError(f"cannot load {url}: {result['errorText']}")
        self._wait_event("Page.loadEventFired")
        self.evaluate("1")  # let events of the load that are still queued arrive
        visit = Visit(url)
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown"):
                visit.console.append(params)
            elif method == "Page.javascriptDialogOpening":
                visit.dialogs.append(params.get("message", ""))
            elif method == "Log.entryAdded":
                visit.log.append(params["entry"])
        return visit

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools evaluates it whatever the page's CSP)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path | None = None, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or of the whole page), also written to `path` if given."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        if path is not None:
            path.write_bytes(data)
        return data

    def close(self) -> None:
        """Quit Chromium and remove its profile."""
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
