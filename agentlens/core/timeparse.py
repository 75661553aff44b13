"""Durations (`15m`, `1h`, `3d`) and points in time (`2026-11-10T05:00:00Z`, `2026-11-10`,
`now`, `24h` = 24 hours before now): the one time vocabulary of every command and library function that
takes a time, a window (`parse_window`: since inclusive, until exclusive) or a bucket width."""

from __future__ import annotations

import datetime as dt
import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")


class TimeSpecError(ValueError):
    """A duration or time that cannot be read (the message names the value and the forms accepted)."""


def parse_duration(value: str | int | float | dt.timedelta, what: str = "duration") -> dt.timedelta:
    """`90s`, `15m`, `1h`, `1.5h`, `3d`, `1w` (or a number of seconds, or a timedelta) -> timedelta > 0."""
    if isinstance(value, dt.timedelta):
        td = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        td = dt.timedelta(seconds=value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        td = dt.timedelta(seconds=float(m.group(1)) * UNITS[m.group(2)])
    else:
        raise TimeSpecError(
            f"{what} {value!r} is not a duration: write a number and a unit, s m h d w (15m, 1h, 3d)"
        )
    if td <= dt.timedelta(0):
        raise TimeSpecError(f"{what} {value!r} must be longer than zero")
    if td % dt.timedelta(seconds=1):
        raise TimeSpecError(f"{what} {value!r} must be a whole number of seconds")
    return td


def parse_time(value: str | dt.datetime | dt.date | None, now: dt.datetime | None = None,
               what: str = "time") -> dt.datetime | None:
    """An ISO 8601 time or date (UTC unless it says otherwise), `now`, or a duration meaning that
    long before now (`--since 24h`). Returns an aware UTC datetime, or None for None."""
    if value is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day)
    else:
        text = value.strip()
        if text.lower() == "now":
            return now
        if _DURATION.match(text):
            return now - parse_duration(text, what)
        try:
            t = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise TimeSpecError(
                f"{what} {value!r} is not a time: give an ISO 8601 time or date (2026-11-10T05:00:00Z, "
                "2026-11-10), `now`, or a duration before now (24h, 7d)"
            ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC)


def parse_window(since: str | dt.datetime | dt.date | None, until: str | dt.datetime | dt.date | None,
                 now: dt.datetime | None = None, what: tuple[str, str] = ("since", "until"),
                 ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A window [since, until) as aware UTC datetimes (None: open on that side), both read against the same
    `now` (`since="24h", until="now"`). TimeSpecError when a side is unreadable or until is not after since."""
    now = now or dt.datetime.now(dt.UTC)
    t0 = parse_time(since, now, what[0])
    t1 = parse_time(until, now, what[1])
    if t0 is not None and t1 is not None and t1 <= t0:
        raise TimeSpecError(f"{what[1]} ({t1:%Y-%m-%d %H:%M:%S}Z) must be after {what[0]} ({t0:%Y-%m-%d %H:%M:%S}Z)")
    return t0, t1


def format_duration(td: dt.timedelta) -> str:
    """The shortest exact form: 3600 s -> `1h`, 5400 s -> `90m`."""
    secs = int(td.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if secs % UNITS[unit] == 0:
            return f"{secs // UNITS[unit]}{unit}"
    return f"{secs}s"
