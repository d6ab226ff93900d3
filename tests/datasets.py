"""Small on-disk datasets for shell tests: a reference and a drifting production batch in several formats."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = ["age", "income"]
CATEGORICAL = ["plan"]


def customers(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Synthetic rows; `shift` moves `age` by that many standard deviations and tilts `plan`."""
    p = np.array([0.6 - 0.3 * min(shift, 1), 0.3, 0.1 + 0.3 * min(shift, 1)])
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 12 * shift, 12, rows),
            "income": rng.lognormal(10, 0.5, rows),
            "plan": rng.choice(["basic", "plus", "premium"], rows, p=p / p.sum()),
        }
    )


def production(rows: int, shift: float, end: datetime, seed: int = 2) -> pd.DataFrame:
    """Production rows with `event_time` spread over the 30 minutes before `end` (naive UTC)."""
    rng = np.random.default_rng(seed)
    frame = customers(rng, rows, shift)
    offsets = rng.uniform(60, 1800, rows)
    frame.insert(0, "event_time", [(end - timedelta(seconds=float(s))).replace(tzinfo=None) for s in offsets])
    frame["event_time"] = pd.to_datetime(frame["event_time"])
    return frame


def write_dataset(root: Path, *, rows: int = 2000, shift: float = 0.8, end: datetime | None = None) -> dict[str, Path]:
    """Reference parquet, production as two parquet files, a csv and a sqlite table; returns their paths."""
    end = end or datetime.now(UTC)
    (root / "reference").mkdir(parents=True, exist_ok=True)
    (root / "prod").mkdir(exist_ok=True)
    (root / "csv").mkdir(exist_ok=True)
    reference = root / "reference" / "train.parquet"
    customers(np.random.default_rng(1), 5000, 0.0).to_parquet(reference, index=False)
    prod = production(rows, shift, end)
    half = len(prod) // 2
    prod.iloc[:half].to_parquet(root / "prod" / "a.parquet", index=False)
    prod.iloc[half:].to_parquet(root / "prod" / "b.parquet", index=False)
    prod.to_csv(root / "csv" / "prod.csv", index=False)
    db = root / "prod.db"
    with sqlite3.connect(db) as conn:
        prod.to_sql("features", conn, index=False, if_exists="replace")
    conn.close()
    return {"reference": reference, "prod": root / "prod", "csv": root / "csv", "db": db}


def monitor_yaml(name: str, source: str, *, every: str = "1s", extra: str = "") -> str:
    """The YAML of monitor `name` over `write_dataset`'s reference and features (`extra`: more of its lines)."""
    lines = [
        f"{name}:",
        "  reference: {path: reference/train.parquet}",
        f"  source: {source}",
        f"  schedule: {{every: {every}}}",
        "  window: 1h",
        "  min_rows: 100",
        "  features: {numeric: [age, income], categorical: [plan]}",
        *(f"  {line}" for line in extra.splitlines()),
    ]
    return "\n".join(f"  {line}" for line in lines)


def config_text(port: int, *, every: str = "1h", extra_monitors: str = "") -> str:
    """A config with one monitor per source kind over `write_dataset`'s files (relative paths)."""
    return (
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "state: {path: var/state.db}\n"
        "sources:\n"
        '  files: {kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}\n'
        '  table: {kind: csv, path: "csv/*.csv", timestamp_column: event_time}\n'
        '  db: {kind: sql, url: "sqlite:///prod.db", table: features, timestamp_column: event_time}\n'
        "monitors:\n"
        + "".join(monitor_yaml(f"from-{name}", name, every=every) + "\n" for name in ("files", "table", "db"))
        + extra_monitors
    )
