"""Planning, before anything is simulated: the customers, when each run starts (a daily traffic shape
over the days), and each run's feature, customer, main model, order and scenario; a customer's
follow-up within a few hours continues their session. All drawn from one `random.Random(seed)`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from .content import (
    CARRIERS,
    FEATURE_WEIGHTS,
    FEATURES,
    FIRST_NAMES,
    LAST_NAMES,
    MAIN_MODEL_WEIGHTS,
    MODELS,
    PRODUCTS,
    TENANTS,
    Model,
)
from .helpers import NS, iso_date, ns_to_dt, rand_alnum, rand_hex
from .run import Customer, Order, Run
from .scenarios import DEFAULT_SPLIT, SCENARIOS

HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 10, 9, 10, 11, 10, 9, 7, 5, 4, 3, 2, 2, 1)


def _customers(rng: random.Random) -> list[Customer]:
    n = rng.randint(11, 13)
    ids = sorted(rng.sample(range(7, 200), n))
    first = list(FIRST_NAMES)
    last = list(LAST_NAMES)
    rng.shuffle(first)
    rng.shuffle(last)
    out = []
    for i, num in enumerate(ids):
        name = f"{first[i]} {last[i]}"
        ascii_first = first[i].lower().translate(str.maketrans("éëáüö", "eeauo"))
        ascii_last = last[i].lower().translate(str.maketrans("éëáüö", "eeauo"))
        email = f"{ascii_first}.{ascii_last}@{rng.choice(('example.com', 'example.org', 'example.net'))}"
        since = datetime(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28), tzinfo=UTC)
        out.append(Customer(f"cust_{num:04d}", "user_" + rand_hex(rng, 3), name, email, rng.choice(TENANTS),
                            rng.choice(("standard", "standard", "gold", "platinum")), iso_date(since)))
    return out


def _start_times(rng: random.Random, n: int, start: datetime, days: int) -> list[int]:
    base = int(start.timestamp()) * NS + start.microsecond * 1000
    out = []
    for _ in range(n):
        day = rng.randrange(max(1, days))
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        out.append(base + (day * 86400 + hour * 3600) * NS + rng.randrange(3600 * NS))
    return sorted(out)


def _make_order(rng: random.Random, run_start: int, feature: str) -> Order:
    product, price = rng.choice(PRODUCTS)
    now = ns_to_dt(run_start)
    placed = now - timedelta(days=rng.randint(2, 12), hours=rng.randint(0, 23))
    carrier = rng.choice(CARRIERS)
    tracking = ("1Z" + rand_alnum(rng, 16).upper()) if carrier == "UPS" else str(rng.randint(10**11, 10**12 - 1))
    if feature == "order_status":
        status = rng.choice(("processing", "shipped", "shipped"))
    elif feature == "shipping":
        status = "in_transit"
    else:
        status = rng.choice(("delivered", "delivered", "shipped"))
    return Order(f"A-{rng.randint(10000, 99999)}", product, price, 1 if rng.random() < 0.85 else 2, placed, status,
                 carrier, tracking, now + timedelta(days=rng.randint(1, 4)))


def scaled_failures(failures: tuple[tuple[str, ...], tuple[str, ...]], n: int, default_n: int) -> list[str]:
    core, extras = failures
    pool = core + extras
    k = min(n, round(len(core) * n / default_n))
    return [pool[i % len(pool)] for i in range(k)]


def split_runs(runs: int) -> tuple[int, int, int]:
    total = sum(DEFAULT_SPLIT)
    n_oi = round(runs * DEFAULT_SPLIT[0] / total)
    n_genai = round(runs * DEFAULT_SPLIT[1] / total)
    return n_oi, n_genai, max(0, runs - n_oi - n_genai)


def _pick_model(rng: random.Random, allowed: tuple[str, ...]) -> Model:
    names = [m for m, _ in MAIN_MODEL_WEIGHTS if not allowed or m in allowed]
    weights = [w for m, w in MAIN_MODEL_WEIGHTS if not allowed or m in allowed]
    return MODELS[rng.choices(names, weights=weights)[0]]


class Planner:
    def __init__(self, seed: int, start: datetime, days: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.start = start
        self.days = days
        self.customers = _customers(self.rng)
        weights = [1.0 / (i + 1) ** 0.6 for i in range(len(self.customers))]
        self.rng.shuffle(weights)
        self.cust_weights = weights
        self.last_session: dict[str, tuple[str, int]] = {}

    def session_for(self, file: str, cust: Customer, t: int) -> str:
        key = f"{file}/{cust.id}"
        prev = self.last_session.get(key)
        if prev is not None and t - prev[1] < 6 * 3600 * NS and self.rng.random() < 0.6:
            sid = prev[0]
        else:
            sid = "sess_" + rand_hex(self.rng, 6)
        self.last_session[key] = (sid, t)
        return sid

    def plan(self, file: str, n: int, scenarios: list[str]) -> list[Run]:
        times = _start_times(self.rng, n, self.start, self.days)
        names = (scenarios + ["healthy"] * n)[:n]
        self.rng.shuffle(names)
        runs = []
        for i, (t, name) in enumerate(zip(times, names, strict=True)):
            sc = SCENARIOS.get(name)
            feats = sc.features if sc else FEATURES
            feature = self.rng.choices(feats, weights=[FEATURE_WEIGHTS[f] for f in feats])[0]
            cust = self.rng.choices(self.customers, weights=self.cust_weights)[0]
            model = _pick_model(self.rng, sc.models if sc else ())
            run = Run(i, file, name, t, feature, cust, "", model, _make_order(self.rng, t, feature))
            runs.append(run)
        return runs
