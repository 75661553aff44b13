"""Small helpers every part uses: ids drawn from a seeded `random.Random` (hex, alphanumeric, UUID4),
JSON dumped as models, SDKs and instrumentations dump it, tool-call arguments parsed when they parse,
and the time unit (ns) with the timestamp, date and money formats the data shows."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

NS = 1_000_000_000
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def rand_hex(rng: random.Random, nbytes: int) -> str:
    while True:
        v = rng.getrandbits(nbytes * 8)
        if v:
            return f"{v:0{nbytes * 2}x}"


def rand_alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def rand_uuid4(rng: random.Random) -> str:
    h = rand_hex(rng, 16)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def cjson(obj: Any) -> str:
    """Compact JSON, as models emit tool arguments and pydantic dumps responses."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def pjson(obj: Any) -> str:
    """json.dumps default separators, as safe_json_dumps / json.dumps in instrumentations do."""
    return json.dumps(obj, ensure_ascii=False)


def ns_to_dt(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def iso_z(ns: int) -> str:
    return ns_to_dt(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d")


def nice_date(dt: datetime) -> str:
    return f"{dt.strftime('%B')} {dt.day}"


def money_str(v: float) -> str:
    return f"{v:.2f}"


def args_obj(arguments: str) -> Any:
    """Tool-call arguments as an object, or the raw text when they do not parse."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
