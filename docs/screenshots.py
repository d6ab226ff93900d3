"""Screenshots of the web view for the README, taken from the demo with Debian's headless Chromium.

Starts `python -m driftwatch demo` on a free loopback port in a temporary folder, with the drift sped up
(`--drift-after 0s --drift-speed 10`) so the monitor is critical and the model on its fallback within a minute,
waits for that and for `--runs` runs of history, then has `chromium --headless --screenshot` write:

- docs/web-overview.png          `/` at 1200 x 640
- docs/web-monitor.png           `/monitors/churn-inputs` at 1200 x 1500 (the worst features and their charts)
- docs/web-monitor-phone.png     the same page at 390 x 1100, the width of a phone

Run from the repository: .venv/bin/python docs/screenshots.py [--chromium /usr/bin/chromium] [--runs 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SHOTS = (
    ("web-overview.png", "/", (1200, 640)),
    ("web-monitor.png", "/monitors/churn-inputs", (1200, 1500)),
    ("web-monitor-phone.png", "/monitors/churn-inputs", (390, 1100)),
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return dict(json.loads(reply.read()))


def ready(base: str, runs: int) -> bool:
    """The monitor is critical with `runs` runs and the model serves its fallback."""
    try:
        monitor = get_json(f"{base}/api/v1/monitors/churn-inputs")
        model = get_json(f"{base}/api/v1/models/churn")
    except OSError:
        return False
    return monitor["severity"] == "critical" and monitor["runs_total"] >= runs and model["active"] != model["primary"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--runs", type=int, default=8, help="runs of history to wait for (default 8)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="driftwatch-shots-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "demo", "--port", str(port), "--dir", str(work / "demo"),
         "--drift-after", "0s", "--drift-speed", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not ready(base, args.runs):
            if time.monotonic() > deadline or demo.poll() is not None:
                print("the demo did not reach critical with a switched model in time", file=sys.stderr)
                return 1
            time.sleep(1)
        for name, path, (width, height) in SHOTS:
            out = DOCS / name
            subprocess.run(
                [args.chromium, *FLAGS, f"--user-data-dir={work / 'chromium'}", f"--window-size={width},{height}",
                 f"--screenshot={out}", base + path],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
            )  # fmt: skip
            print(f"{out.relative_to(DOCS.parent)}: {base}{path} at {width}x{height}")
        return 0
    finally:
        demo.terminate()
        demo.wait(40)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
