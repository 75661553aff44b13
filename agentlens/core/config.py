"""User configuration (TOML).

```toml
[dimensions]
feature = ["app.feature", "metadata.feature", "request.feature"]
customer_id = ["app.customer_id", "metadata.customer_id", "request.customer_id"]
```

Each dimension is a list of lookups tried in order: your keys first, then the defaults below. A
lookup is an attribute key (`app.feature`) or a JSON path into an attribute whose value is a JSON
object (`metadata.feature` reads key `feature` of the OpenInference `metadata` attribute;
`request.metadata.feature` reads the agent_runs `request` column). Runs look on the root span first,
then on their other spans.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .dimensions import LOOKUP_DIMENSIONS

T = TypeVar("T")

# The attribute lookups of each LOOKUP_DIMENSIONS dimension, tried in order after the config's own.
DEFAULT_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "user_id": (
        "user.id", "enduser.id", "gen_ai.user.id", "langfuse.user.id",
        "traceloop.association.properties.user_id", "metadata.user_id",
        "request.user_id", "request.metadata.user_id", "request.user",
    ),
    # the keys a user sets before `gen_ai.conversation.id`, which frameworks fill with an id of their own
    # (pydantic-ai: a fresh UUID per run), so the user's session wins when a span has both
    "session_id": (
        "session.id", "langfuse.session.id",
        "traceloop.association.properties.session_id", "metadata.session_id",
        "metadata.thread_id", "metadata.conversation_id", "gen_ai.conversation.id",
        "request.session_id", "request.metadata.session_id", "request.conversation_id",
    ),
    "customer_id": (
        "customer.id", "customer_id", "tenant.id", "tenant_id", "app.customer_id",
        "traceloop.association.properties.customer_id", "traceloop.association.properties.tenant_id",
        "metadata.customer_id", "metadata.tenant_id",
        "request.customer_id", "request.metadata.customer_id", "request.tenant_id",
        "request.metadata.tenant_id",
    ),
    "feature": (
        "feature", "app.feature", "traceloop.association.properties.feature", "metadata.feature",
        "request.feature", "request.metadata.feature",
    ),
    "environment": (
        "deployment.environment.name", "deployment.environment", "langfuse.environment",
        "metadata.environment", "request.environment", "request.metadata.environment",
    ),
}


class ConfigError(ValueError):
    """The config file is unreadable or has a wrong shape (the message names the file and key)."""


# The config's sections; each is read (and checked) by the module it configures.
SECTIONS = {
    "dimensions": "attribute lookups of the run dimensions (core.config)",
    "pricing": "price overrides and reconciliation tolerance (pricing)",
    "models": "context windows (pricing.models)",
    "budgets": "spending caps (pricing.budgets)",
    "policy": "caps, tool lists and thresholds of the failure classifiers (failures.policy)",
    "sources": "live sources (sources.postgres)",
}


def read_toml(path: str | Path, what: str = "config file", error: type[ValueError] = ConfigError) -> dict[str, Any]:
    """A TOML file as a dict; `error` names the file when it is missing or not TOML."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{p}: not valid TOML: {e}") from None


class Invalid(ValueError):
    """A value of the wrong shape; the message says what it must be ("must be a positive number"), and the
    reader adds the value (", got -1") unless `show_value` is False (the message quotes the bad part)."""

    def __init__(self, message: str, show_value: bool = True):
        super().__init__(message)
        self.show_value = show_value


_MISSING: Any = object()
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class Section(Mapping[str, Any]):
    """One table of a TOML document, checked as it is read: every error names the file and the key
    (`agentlens.toml: [budgets].run_usd must be a positive number of USD, got -1`), keys the section does
    not know are refused (`only`), and sub-tables and arrays of tables are Sections too. The one reader of
    the config's sections (pricing, budgets, models, policy, sources, dimensions) and of alert rules files.

        budgets = Section.of(config, "budgets").only(("run_usd", "run_usd_hard", "daily_usd"), "a budget")
        run_usd = budgets.value("run_usd", usd_amount, None)
    """

    def __init__(self, data: Mapping[str, Any], where: str, label: str = "", *, table: str | None = None,
                 error: type[ValueError] = ConfigError):
        self.data = data
        self.where = where        # the file (or "config" for a config made in Python)
        self.label = label        # how messages name this table: "", "[budgets]", "[[slo]] #2 (api)"
        self._table = table       # the dotted TOML name of a [table] ("budgets.daily_usd"), else None
        self.error = error

    @classmethod
    def of(cls, config: Config, name: str) -> Section:
        """`[name]` of the config (dotted for a sub-table: "sources.postgres"); empty when absent."""
        root = cls(config.raw, config.path or "config")
        section = root
        for part in name.split("."):
            section = section.table(part)
        return section

    @classmethod
    def document(cls, data: Mapping[str, Any], where: str, error: type[ValueError] = ConfigError) -> Section:
        """A whole TOML document (its top-level keys are named bare: `slo`, its tables `[defaults]`)."""
        if not isinstance(data, Mapping):
            raise error(f"{where}: must be a TOML document")
        return cls(data, where, error=error)

    # --- Mapping ---------------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    # --- naming and failing ------------------------------------------------------------------------------
    def key(self, key: str | None = None) -> str:
        """How messages name `key` of this table (or the table itself)."""
        if key is None:
            return self.label
        key = key if _BARE_KEY.match(key) else f'"{key}"'
        if self._table is not None:
            return f"[{self._table}].{key}"
        return f"{self.label}.{key}" if self.label else key

    def fail(self, problem: str, key: str | None = None) -> ValueError:
        """The error to raise: `file: key problem`."""
        return self.error(f"{self.where}: {self.key(key)} {problem}")

    def only(self, known: Iterable[str], what: str = "a known key") -> Section:
        """Refuse keys not in `known` ("... is not a budget; use one of run_usd, ..."). Returns self."""
        known = tuple(known)
        for k in self.data:
            if k not in known:
                raise self.fail(f"is not {what}; use one of {', '.join(known)}", k)
        return self

    def require(self, *keys: str) -> Section:
        for k in keys:
            if k not in self.data:
                raise self.fail("is required", k)
        return self

    # --- values ------------------------------------------------------------------------------------------
    def value(self, key: str, check: Callable[[Any], T] | None = None, default: Any = _MISSING) -> Any:
        """The value of `key` passed through `check` (which raises Invalid("must be ...") on a value of the
        wrong shape: the message then names the file, the key and the value). A missing key gives
        `default`, or fails as required when there is none."""
        if key not in self.data:
            if default is _MISSING:
                raise self.fail("is required", key)
            return default
        v = self.data[key]
        if check is None:
            return v
        try:
            return check(v)
        except Invalid as e:
            raise self.fail(f"{e}, got {v!r}" if e.show_value else str(e), key) from None

    # --- nested tables -------------------------------------------------------------------------------------
    def table(self, key: str, quoted: bool = False) -> Section:
        """The sub-table `key` (empty when absent): `[budgets.daily_usd]`, `[models."m"]`, `[[slo]] #1.where`."""
        v = self.data.get(key, {})
        part = f'"{key}"' if quoted or not _BARE_KEY.match(key) else key
        if self._table is not None or not self.label:  # a [table] or the document: [name.key]
            name = f"{self._table}.{part}" if self._table is not None else part
            sub = Section(v if isinstance(v, Mapping) else {}, self.where, f"[{name}]", table=name, error=self.error)
        else:
            sub = Section(v if isinstance(v, Mapping) else {}, self.where, f"{self.label}.{key}", error=self.error)
        if not isinstance(v, Mapping):
            raise sub.fail("must be a table")
        return sub

    def tables(self, key: str) -> Iterator[Section]:
        """Each table of the array of tables `key` (`[[pricing.overrides]] #1`, #2, ...)."""
        name = f"{self._table}.{key}" if self._table is not None else key
        label = f"[[{name}]]" if self._table is not None or not self.label else f"{self.label}.{key}"
        raw = self.data.get(key, [])
        if not isinstance(raw, list):
            raise self.error(f"{self.where}: {label} must be an array of tables")
        for i, t in enumerate(raw, 1):
            entry = Section(t if isinstance(t, Mapping) else {}, self.where, f"{label} #{i}", error=self.error)
            if not isinstance(t, Mapping):
                raise entry.fail("must be a table")
            yield entry

    def named(self, suffix: str) -> Section:
        """The same table, named with `suffix` too in messages (`[[slo]] #1 (api)`)."""
        return Section(self.data, self.where, f"{self.label}{suffix}", error=self.error)


# --- value checks for Section.get ---------------------------------------------------------------------------
def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def number(v: Any) -> float:
    if not _num(v):
        raise Invalid("must be a number")
    return float(v)


def positive_number(v: Any) -> float:
    if not _num(v) or v <= 0:
        raise Invalid("must be a positive number")
    return float(v)


def integer(minimum: int, must: str | None = None) -> Callable[[Any], int]:
    """A whole number >= minimum ("must be a positive integer" for 1, else "must be an integer >= n")."""
    message = must or ("must be a positive integer" if minimum == 1 else f"must be an integer >= {minimum}")

    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise Invalid(message)
        return v
    return check


def text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise Invalid("must be a non-empty string")
    return v


def strings(v: Any) -> tuple[str, ...]:
    """A list of non-empty strings (one string is a list of one)."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise Invalid("must be a list of non-empty strings")
    return tuple(v)


@dataclass(frozen=True)
class Config:
    dimensions: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_DIMENSIONS)
    )
    path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """What rebuilds this config in another process (from_payload): the document and where it came from."""
        return {"path": self.path, "raw": self.raw}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Config:
        return cls.from_dict(payload.get("raw") or {}, payload.get("path"))

    @classmethod
    def load(cls, path: str | Path | None) -> Config:
        if path is None:
            return cls()
        return cls.from_dict(read_toml(path), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | None = None) -> Config:
        """Check the sections' names and read `[dimensions]` (the other sections are read, and checked, by
        the modules they configure: pricing.load_pricing, budgets.load_budgets, ...)."""
        doc = Section.document(data, path or "config")
        doc.only(SECTIONS, "a section of the config")
        section = doc.table("dimensions").only(LOOKUP_DIMENSIONS, "a dimension")
        dims = dict(DEFAULT_DIMENSIONS)
        for name in section:
            keys = section.value(name, _lookups)
            dims[name] = (*keys, *(k for k in DEFAULT_DIMENSIONS[name] if k not in keys))
        return cls(dimensions=dims, path=path, raw=data)


def _lookups(v: Any) -> tuple[str, ...]:
    try:
        return strings(v)
    except Invalid:
        raise Invalid("must be a list of attribute keys or paths") from None
