"""The `driftwatch` command: run, check, backfill, validate, demo. Errors are one line; exit 2 for config/usage errors.

Startup is kept cheap: parsing arguments (and `--help`) imports only the standard library, the error tree and the
log setup; each command imports what it needs (config and pydantic, data sources, statistics, the web stack) when
it runs. tests/test_startup.py holds this line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftwatch import __version__
from driftwatch.errors import DriftwatchError
from driftwatch.runtime.logs import setup_logging

if TYPE_CHECKING:
    import httpx

    from driftwatch.config import Config
    from driftwatch.runtime.store import Store

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
#: The data-health alertnames (driftwatch.core.alerting.HEALTH_ALERTS; spelled here to keep startup cheap).
HEALTH_ALERTNAMES = ("MissingValues", "VolumeDrop", "StaleData", "SchemaChanged", "NoData")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `driftwatch` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_format, "debug" if args.debug else args.log_level)
    try:
        return int(args.func(args))
    except DriftwatchError as err:
        if args.debug:
            logging.getLogger("driftwatch").exception("failed")
        print(f"driftwatch: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="driftwatch", description="Watch production features for drift.")
    parser.add_argument("--version", action="version", version=f"driftwatch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_command(commands, "run", "run the daemon", cmd_run)

    check = add_command(commands, "check", "one run of each monitor now (a CI data-validation gate)", cmd_check)
    check.add_argument("--monitor", help="only this monitor")
    when = check.add_mutually_exclusive_group()
    when.add_argument("--at", type=parse_time, help="window end, ISO-8601 (default: now; naive = UTC)")
    when.add_argument("--from", dest="start", type=parse_time, help="a timeline: first window's start (with --to)")
    check.add_argument("--to", dest="end", type=parse_time, help="a timeline: windows end by this time")
    check.add_argument("--step", type=parse_duration, help="a timeline: between window starts (default: the window)")
    check.add_argument("--format", choices=["table", "json"], default="table", help="json: JSON lines for a timeline")
    check.add_argument(
        "--fail-on",
        choices=["warning", "critical"],
        default="critical",
        help="exit 1 when a monitor reaches this severity (default: critical)",
    )

    backfill = add_command(commands, "backfill", "store the runs of past windows (the API's run history)", cmd_backfill)
    backfill.add_argument("--monitor", required=True)
    backfill.add_argument("--from", dest="start", type=parse_time, required=True, help="first window's start")
    backfill.add_argument("--to", dest="end", type=parse_time, required=True, help="windows end by this time")
    backfill.add_argument("--step", type=parse_duration, help="between window starts (default: the window)")
    backfill.add_argument("--delete", action="store_true", help="delete the backfilled runs ending in --from..--to")

    report = add_command(
        commands, "report", "one run of a monitor written as a self-contained HTML page (a CI artifact)", cmd_report
    )
    report.add_argument("--monitor", required=True, help="the monitor")
    report.add_argument("--at", type=parse_time, help="window end, ISO-8601 (default: now; naive = UTC)")
    report.add_argument("-o", "--output", type=Path, help="the HTML file to write (default: standard output)")

    add_command(commands, "validate", "check the config and the references' columns", cmd_validate)

    alerts = commands.add_parser("alerts", help="alert state, silences and dead letters (works on the state store)")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    add_command(alert_commands, "list", "active alerts, silences and the outbox backlog", cmd_alerts_list)
    retry = add_command(alert_commands, "retry", "replay dead-letter notifications", cmd_alerts_retry)
    retry.add_argument("--sink", help="only this sink's dead letters")
    silence = add_command(alert_commands, "silence", "mute matching alerts for a while", cmd_alerts_silence)
    silence.add_argument("--monitor")
    silence.add_argument("--feature")
    silence.add_argument(
        "--alertname",
        choices=["FeatureDrift", "DatasetDrift", "MonitorFailing", "ModelSwitched", *HEALTH_ALERTNAMES],
    )
    until = silence.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", type=parse_duration, help="e.g. 2h")
    until.add_argument("--until", type=parse_time, help="ISO-8601 time (naive = UTC)")
    silence.add_argument("--comment", default="")

    models = commands.add_parser("models", help="fallback switching of a running daemon (through its API)")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for action, text in (
        ("status", "the active version and state"),
        ("history", "the audit trail"),
        ("switch", "switch to a version by hand (pinned unless --no-pin)"),
        ("restore", "switch back to the primary and unpin"),
        ("unpin", "let automatic switching act"),
    ):
        sub = add_command(model_commands, action, text, cmd_models)
        sub.add_argument("--url", help="the daemon's base URL (default: from server in the config)")
        sub.add_argument("name", nargs="?" if action == "status" else None, help="the model")
        if action == "switch":
            sub.add_argument("--to", required=True, help="the version to switch to")
            sub.add_argument("--no-pin", dest="pin", action="store_false")
        if action in ("switch", "restore"):
            sub.add_argument("--reason", default=f"manual {action} from the CLI")

    demo = commands.add_parser("demo", help="run the daemon on synthetic data that starts drifting")
    demo.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 in a container)")
    demo.add_argument("--port", type=int, default=9108)
    demo.add_argument("--dir", type=Path, default=Path("demo-work"), help="work folder (default: demo-work)")
    demo.add_argument(
        "--drift-after",
        type=parse_duration,
        default=timedelta(seconds=30),
        help="when the production stream starts drifting (default: 30s)",
    )
    demo.add_argument(
        "--drift-speed",
        type=float,
        default=1.0,
        help="how fast the stream drifts once it starts, as a multiple of the default pace (default: 1)",
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def add_command(group: Any, name: str, text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A subcommand with the `-c/--config FILE` option that every command but `demo` takes."""
    command: argparse.ArgumentParser = group.add_parser(name, help=text)
    command.add_argument("-c", "--config", type=Path, required=True)
    command.set_defaults(func=func)
    return command


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime; a naive one is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"invalid ISO-8601 time {text!r}") from err
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """`30s`, `2h`, `1h30m` ... as a timedelta (`driftwatch.config.parse_duration`, imported when an option uses it;
    argparse names this function in its `invalid parse_duration value` message)."""
    from driftwatch.config import parse_duration as parse

    return parse(text)


def load_config(path: Path) -> Config:
    """The validated config at `path` (`driftwatch.config.load_config`, imported by the commands that read one)."""
    from driftwatch.config import load_config as load

    return load(path)


def cmd_run(args: argparse.Namespace) -> int:
    """`driftwatch run`: the daemon, until SIGTERM/SIGINT."""
    from driftwatch.runtime.daemon import Daemon, serve

    serve(Daemon(args.config))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """`driftwatch validate`: load the config and check the references' columns; print a one-line summary."""
    from driftwatch.runtime.monitor import resolve_features

    config = load_config(args.config)
    for monitor in config.monitors.values():
        resolve_features(monitor, config.sources[monitor.source].timestamp_column)
    print(f"{args.config}: ok ({len(config.monitors)} monitors, {len(config.sources)} sources)")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """`driftwatch check`: one run of each (or one) monitor with the window ending at --at."""
    from driftwatch.core.report import Severity
    from driftwatch.runtime.monitor import close_sources, open_sources, prepare_monitor, result_dict, run_monitor
    from driftwatch.runtime.stats_pool import stats_executor
    from driftwatch.runtime.tables import format_result

    if (args.start is None) != (args.end is None) or (args.step is not None and args.start is None):
        raise DriftwatchError("a timeline needs both --from and --to (--step only with them)")
    config = load_config(args.config)
    names = [args.monitor] if args.monitor else list(config.monitors)
    if args.monitor and args.monitor not in config.monitors:
        raise DriftwatchError(f"unknown monitor {args.monitor!r} (defined: {', '.join(config.monitors)})")
    if args.start is not None:
        return check_timeline(args, config, names)
    at = args.at or datetime.now(UTC)
    sources = open_sources(config)
    profile_dir = Path(config.state.path).parent / "profiles"
    outputs, failed, worst = [], False, Severity.OK
    try:
        for i, name in enumerate(names, 1):
            if sys.stderr.isatty() and len(names) > 1:
                print(f"[{i}/{len(names)}] checking {name} ...", file=sys.stderr)
            monitor = prepare_monitor(name, config, profile_dir, sources)
            progress = progress_line(name) if sys.stderr.isatty() else None
            history = volume_history(Path(config.state.path), name, monitor.health.volume_runs)
            result = run_monitor(monitor, at, stats_executor(), progress, history=history)
            if sys.stderr.isatty():
                print("\r\033[K", end="", file=sys.stderr, flush=True)
            failed |= result.outcome == "error"
            if result.report is not None:
                worst = max(worst, result.report.severity)
            if result.health is not None:  # data health counts like drift; no data fails any --fail-on
                worst = max(worst, result.health.severity)
            reference_rows = monitor.profile.rows if result.reference_rows is None else result.reference_rows
            outputs.append((name, result, reference_rows))
    finally:
        close_sources(sources.values())  # database pools, and a Dask cluster the engine started
    if args.format == "json":
        print(json.dumps({"monitors": [result_dict(*o) for o in outputs]}, indent=2, allow_nan=False))
    else:
        print("\n\n".join(format_result(*o) for o in outputs))
    return exit_code(failed, worst, args.fail_on)


def exit_code(failed: bool, worst: int, fail_on: str) -> int:
    """2 when a run failed, 1 when the worst severity reaches `fail_on`, else 0."""
    from driftwatch.core.report import Severity

    if failed:
        return EXIT_ERROR
    return EXIT_DRIFT if worst >= Severity.parse(fail_on) else EXIT_OK


def check_timeline(args: argparse.Namespace, config: Config, names: list[str]) -> int:
    """`check --from --to [--step]`: every window of each monitor in this process, as a table or JSON lines."""
    from driftwatch.runtime.monitor import close_sources, open_sources

    sources = open_sources(config)
    try:
        return _check_timeline(args, config, names, sources)
    finally:
        close_sources(sources.values())


def _check_timeline(args: argparse.Namespace, config: Config, names: list[str], sources: dict[str, Any]) -> int:
    from driftwatch.runtime.history import run_windows, window_ends
    from driftwatch.runtime.monitor import prepare_monitor, result_dict
    from driftwatch.runtime.stats_pool import stats_executor
    from driftwatch.runtime.tables import format_timeline

    profile_dir = Path(config.state.path).parent / "profiles"
    failed, worst, tables = False, 0, []
    for name in names:
        window = config.monitors[name].window
        step = window if args.step is None else args.step
        ends = window_ends(args.start, args.end, window, step)
        monitor = prepare_monitor(name, config, profile_dir, sources)
        results = []
        progress = window_progress(name) if sys.stderr.isatty() else None
        for result in run_windows(monitor, ends, progress, stats_executor()):
            results.append(result)
            failed |= result.outcome == "error"
            worst = max(worst, result.report.severity if result.report is not None else 0)
            if args.format == "json":
                reference_rows = monitor.profile.rows if result.reference_rows is None else result.reference_rows
                print(json.dumps(result_dict(name, result, reference_rows), allow_nan=False), flush=True)
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        file_rows = monitor.profile.rows if monitor.config.reference.path is not None else None
        tables.append(format_timeline(name, results, file_rows, window, step))
    if args.format == "table":
        print("\n\n".join(tables))
    return exit_code(failed, worst, args.fail_on)


def window_progress(name: str) -> Callable[[int, int, datetime], None]:
    """Which window of how many is running, as one line on the terminal."""

    def show(number: int, total: int, end: datetime) -> None:
        print(
            f"\r\033[K{name}: window {number}/{total} ending {end:%Y-%m-%d %H:%M} UTC",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def cmd_backfill(args: argparse.Namespace) -> int:
    """`driftwatch backfill`: run past windows of one monitor and store them in the state database."""
    from driftwatch.runtime.history import backfill, window_ends
    from driftwatch.runtime.monitor import close_sources, open_sources, prepare_monitor
    from driftwatch.runtime.stats_pool import stats_executor
    from driftwatch.runtime.store import Store

    config = load_config(args.config)
    if args.monitor not in config.monitors:
        raise DriftwatchError(f"unknown monitor {args.monitor!r} (defined: {', '.join(config.monitors)})")
    window = config.monitors[args.monitor].window
    if args.delete:
        with Store(Path(config.state.path)) as store:
            deleted = store.delete_backfill(args.monitor, args.start, args.end)
        print(
            f"{args.monitor}: deleted {deleted} backfilled run(s) ending in {args.start:%Y-%m-%d %H:%M:%S} .. "
            f"{args.end:%Y-%m-%d %H:%M:%S} UTC"
        )
        return EXIT_OK
    ends = window_ends(args.start, args.end, window, window if args.step is None else args.step)
    sources = open_sources(config)
    try:
        monitor = prepare_monitor(args.monitor, config, Path(config.state.path).parent / "profiles", sources)
        with Store(Path(config.state.path)) as store:
            progress = window_progress(args.monitor) if sys.stderr.isatty() else None
            results = backfill(monitor, store, ends, progress, stats_executor())
    finally:
        close_sources(sources.values())
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    counts: dict[str, int] = {}
    for result in results:
        key = result.report.severity.label if result.report is not None else result.outcome
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {key}" for key, n in sorted(counts.items()))
    print(
        f"{args.monitor}: stored {len(results)} backfilled run(s) ending {ends[0]:%Y-%m-%d %H:%M:%S} .. "
        f"{ends[-1]:%Y-%m-%d %H:%M:%S} UTC ({summary}) in {config.state.path}"
    )
    return EXIT_OK


def volume_history(state_path: Path, monitor: str, runs: int) -> list[int]:
    """Rows of the monitor's latest successful runs in the daemon's state store, if it has one (else none)."""
    from driftwatch.runtime.store import Store

    if not state_path.is_file():
        return []
    try:
        with Store(state_path) as store:
            return store.recent_rows(monitor, runs)
    except DriftwatchError as err:
        logging.getLogger("driftwatch.cli").warning("volume signal without history: %s", err)
        return []


def cmd_report(args: argparse.Namespace) -> int:
    """`driftwatch report`: the monitor page of one run as one HTML file (inline CSS and SVG, no network)."""
    from driftwatch.runtime.reports import build_report

    page, result = build_report(load_config(args.config), args.monitor, args.at or datetime.now(UTC))
    if args.output is None:
        sys.stdout.write(page)
        return EXIT_OK
    try:
        args.output.write_text(page, encoding="utf-8")
    except OSError as err:
        raise DriftwatchError(f"cannot write {args.output}: {err.strerror or err}") from err
    severity = result.report.severity.label if result.report else result.outcome.replace("_", " ")
    rows = "unknown" if result.rows is None else result.rows
    print(f"{args.output}: report of {args.monitor} ({severity}, {rows} rows)", file=sys.stderr)
    return EXIT_OK


def progress_line(name: str) -> Callable[[int, int, float], None]:
    """A run's progress as one line on the terminal, rewritten at most twice a second."""
    shown = [-1.0]

    def show(stage: int, rows: int, seconds: float) -> None:
        if seconds - shown[0] >= 0.5:
            shown[0] = seconds
            print(
                f"\r\033[K{name}: pass {stage}: {rows:,} rows read, {seconds:.1f}s", end="", file=sys.stderr, flush=True
            )

    return show


def open_store(config_path: Path) -> Store:
    """The state store named by the config at `config_path`."""
    from driftwatch.runtime.store import Store

    return Store(Path(load_config(config_path).state.path))


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """`driftwatch alerts list`: alert states, active silences, outbox counts."""
    now = datetime.now(UTC)
    with open_store(args.config) as store:
        states = store.alert_states()
        silences = store.active_silences(now)
        counts = store.outbox_counts()
    print(f"{len(states)} alert(s):")
    for key, state in sorted(states.items()):
        print(f"  {key:<50} {state['phase']:<8} {state['severity']:<8} since {state['started_at']}")
    print(f"{len(silences)} active silence(s):")
    for s in silences:
        matchers = " ".join(f"{k}={getattr(s, k)}" for k in ("monitor", "feature", "alertname") if getattr(s, k))
        print(f"  #{s.id} {matchers} until {s.until.isoformat()} {s.comment}")
    print(f"outbox: {counts['pending']} pending, {counts['dead']} dead letter(s)")
    return EXIT_OK


def cmd_alerts_retry(args: argparse.Namespace) -> int:
    """`driftwatch alerts retry`: dead letters back to pending; a running daemon delivers them."""
    with open_store(args.config) as store:
        replayed = store.retry_dead(args.sink)
    print(f"{replayed} dead letter(s) queued for delivery again")
    return EXIT_OK


def cmd_alerts_silence(args: argparse.Namespace) -> int:
    """`driftwatch alerts silence`: add a silence; matching alerts keep their state but send nothing."""
    if not (args.monitor or args.feature or args.alertname):
        raise DriftwatchError("a silence needs at least one of --monitor, --feature, --alertname")
    now = datetime.now(UTC)
    until = args.until or now + args.duration
    if until <= now:
        raise DriftwatchError(f"--until {until.isoformat()} is not in the future")
    with open_store(args.config) as store:
        silence_id = store.add_silence(
            until=until,
            monitor=args.monitor,
            feature=args.feature,
            alertname=args.alertname,
            comment=args.comment,
            now=now,
        )
    print(f"silence #{silence_id} until {until.isoformat()}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    """`driftwatch models ...`: call the running daemon's model API with the config's API token."""
    import httpx

    config = load_config(args.config)
    server = config.server
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::") else server.host
    base = (args.url or server.external_url or f"http://{host}:{server.port}").rstrip("/")
    token = server.api_token.get_secret_value() if server.api_token else None
    read = server.read_token.get_secret_value() if server.read_token else token
    path = "/api/v1/models" + (f"/{args.name}" if args.name else "")
    body: dict[str, object] = {"actor": "cli"}
    if args.models_command == "switch":
        body.update(to=args.to, pin=args.pin, reason=args.reason)
    elif args.models_command == "restore":
        body.update(reason=args.reason)
    try:
        if args.models_command in ("status", "history"):
            suffix = "/history" if args.models_command == "history" else ""
            response = httpx.get(base + path + suffix, headers=_bearer(read), timeout=30)
        else:
            response = httpx.post(f"{base}{path}/{args.models_command}", json=body, headers=_bearer(token), timeout=30)
    except httpx.HTTPError as err:
        raise DriftwatchError(f"cannot reach the daemon at {base}: {err}") from err
    print(json.dumps(reply_json(response), indent=2))
    return EXIT_OK


def reply_json(response: httpx.Response) -> Any:
    """The JSON body of a daemon reply; DriftwatchError (one line) for an error status or a reply that is not JSON
    (a proxy's HTML 502, the wrong --url)."""
    try:
        data, is_json = response.json(), True
    except (ValueError, RecursionError):
        data, is_json = None, False
    status = f"{response.status_code} {response.reason_phrase}".strip()
    if response.status_code >= 400 and isinstance(data, dict) and isinstance(data.get("error"), str):
        raise DriftwatchError(f"{response.url} answered {status}: {' '.join(data['error'].split())}")
    if response.status_code >= 400 or not is_json:
        kind = response.headers.get("content-type", "").partition(";")[0].strip() or "no content type"
        what = "JSON without an error message" if is_json else f"a {kind} reply, not the daemon's JSON"
        raise DriftwatchError(f"{response.url} answered {status} ({what})")
    return data


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def cmd_demo(args: argparse.Namespace) -> int:
    """`driftwatch demo`: synthetic reference and drifting stream, then the daemon on them."""
    from driftwatch.runtime.demo import run_demo

    if not 0 < args.drift_speed <= 100:
        raise DriftwatchError(f"--drift-speed must be in (0, 100], got {args.drift_speed:g}")
    run_demo(args.dir, host=args.host, port=args.port, drift_after=args.drift_after, drift_speed=args.drift_speed)
    return EXIT_OK
