"""Durations in config files: `30s`, `5m`, `1h30m`, `7d` text to and from timedelta."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `1h`, `7d` or combinations in that order (`1h30m`) as a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The shortest `1d2h3m4s`-style text for a non-negative whole number of seconds (`0s` for zero)."""
    if td < timedelta(0) or td.microseconds:
        raise ValueError(f"cannot format {td!r} as a duration: need a non-negative whole number of seconds")
    rest = int(td.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _positive_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        td = value
    elif isinstance(value, str):
        td = parse_duration(value)
    else:
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h, 7d)")
    if td <= timedelta(0):
        raise ValueError(f"duration must be > 0, got {value!r}")
    return td


Duration = Annotated[timedelta, BeforeValidator(_positive_duration), PlainSerializer(format_duration, return_type=str)]
