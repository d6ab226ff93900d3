"""APScheduler 3.x set-up: one job per monitor, never overlapping, UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

#: A run that starts later than this after its scheduled time is skipped (the next one comes soon).
MISFIRE_GRACE_SECONDS = 60


def make_scheduler(workers: int = 4) -> BackgroundScheduler:
    """A background scheduler in UTC whose jobs never overlap and coalesce missed runs."""
    return BackgroundScheduler(
        timezone=dt.UTC,
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )


def schedule_monitor(scheduler: BackgroundScheduler, name: str, trigger: object, run: Callable[[str], None]) -> None:
    """Add (or replace) the job of monitor `name`; interval monitors also run once right away."""
    first = dt.datetime.now(dt.UTC) if isinstance(trigger, IntervalTrigger) else None
    extra = {"next_run_time": first} if first else {}
    scheduler.add_job(run, trigger, args=[name], id=f"monitor:{name}", name=name, replace_existing=True, **extra)
