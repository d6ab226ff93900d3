"""Durations in config files: `30s`, `5m`, `1h30m`, `7d` text to and from timedelta, bounded so none overflows.

Every config duration is at most `MAX_DURATION` (10 years) and a monitor's window at most `MAX_WINDOW` (1 year):
a larger value is a one-line error naming the limit, never an OverflowError or a daemon that cannot schedule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_UNITS = (86400, 3600, 60, 1)

#: The longest duration any config value (or `parse_duration`) accepts.
MAX_DURATION = timedelta(days=3650)
#: The longest window a monitor may read.
MAX_WINDOW = timedelta(days=365)


def parse_duration(text: str, *, at_most: timedelta = MAX_DURATION) -> timedelta:
    """`30s`, `5m`, `1h`, `7d` or combinations in that order (`1h30m`) as a timedelta of at most `at_most`.

    Raises ValueError (never OverflowError) for bad text or a duration over the limit:

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("99999999999d")
    Traceback (most recent call last):
    ValueError: duration must be at most 3650d, got '99999999999d'
    """
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    limit = int(at_most.total_seconds())
    # A number longer than the limit's seconds is over it whatever its unit (and int() of it stays cheap).
    too_long = any(group is not None and len(group.lstrip("0")) > len(str(limit)) for group in match.groups())
    seconds = limit + 1 if too_long else sum(int(g or 0) * unit for g, unit in zip(match.groups(), _UNITS, strict=True))
    if seconds > limit:
        raise ValueError(f"duration must be at most {format_duration(at_most)}, got {_shorten(text.strip())!r}")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The shortest `1d2h3m4s`-style text for a non-negative whole number of seconds (`0s` for zero)."""
    if td < timedelta(0) or td.microseconds:
        raise ValueError(f"cannot format {td!r} as a duration: need a non-negative whole number of seconds")
    rest = int(td.total_seconds())
    parts = []
    for unit, size in zip("dhms", _UNITS, strict=True):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _positive_duration(at_most: timedelta) -> Callable[[Any], Any]:
    """A validator of durations in (0, at_most]: text, or a timedelta from Python."""

    def validate(value: Any) -> Any:
        if isinstance(value, timedelta):
            td = value
            if td > at_most:
                raise ValueError(f"duration must be at most {format_duration(at_most)}, got {td!r}")
        elif isinstance(value, str):
            td = parse_duration(value, at_most=at_most)
        else:
            raise ValueError(f"invalid duration {_shorten(repr(value))} (use e.g. 30s, 5m, 1h, 7d)")
        if td <= timedelta(0):
            raise ValueError(f"duration must be > 0, got {value!r}")
        return td

    return validate


_SERIALIZE = PlainSerializer(format_duration, return_type=str)

Duration = Annotated[timedelta, BeforeValidator(_positive_duration(MAX_DURATION)), _SERIALIZE]
"""A config duration: > 0 and at most MAX_DURATION (10 years)."""

WindowDuration = Annotated[timedelta, BeforeValidator(_positive_duration(MAX_WINDOW)), _SERIALIZE]
"""A monitor's window: > 0 and at most MAX_WINDOW (1 year)."""
