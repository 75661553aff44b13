"""Finding runs: filters over the `runs` table compiled to SQL with bound parameters, sorted and
paged in DuckDB (`LIMIT ? OFFSET ?`), so a page of a million runs comes back in milliseconds.

    flt = RunFilter(since="2026-11-12", status="error", equals={"feature": "refund"}, min_cost_usd=0.5)
    find_runs(lens, flt, sort="cost_usd", limit=20)      # one page, polars
    count_runs(lens, flt)                                 # how many match

The run explorer widget and the report are built on these functions; column names (for filters and
sorting) are checked against the schema before they reach SQL text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from .. import schema
from ..core.dimensions import GROUP_DIMENSIONS
from ..core.timeparse import TimeSpecError, parse_window
from ..metrics.costs import dimension as key_dimension
from ..store import Store
from . import search as S
from .trace import has_table

RUN_COLUMNS = tuple(c.name for c in schema.RUN_COLUMNS)
# Columns a run can be filtered and grouped by (text dimensions; status has a filter of its own).
DIMENSIONS = GROUP_DIMENSIONS
NONE_VALUE = "(none)"  # filter value that matches NULL

# The columns of a page of runs (the explorer's table); `failure_modes` is added when classified.
PAGE_COLUMNS = ("run_id", "started_at", "agent_name", "feature", "customer_id", "status", "model",
                "duration_ms", "cost_usd", "input_tokens", "output_tokens", "llm_calls", "tool_calls",
                "error_count", "input")


class FilterError(ValueError):
    """A filter names an unknown column or has a value of the wrong shape."""


@dataclass(frozen=True)
class RunFilter:
    """Which runs: every field is optional and they combine with AND. `since` is inclusive and
    `until` exclusive (ISO text or datetimes; naive ones are UTC). `equals` maps a dimension (a run
    column, `attr:KEY` or `json:$.PATH` as costs take them) to a value (`"(none)"` matches runs without
    one). `text` searches everything the run holds: its input and output, every LLM message, tool
    arguments and results, error messages (the words, in order, case-insensitive: `explore.search`)."""

    since: dt.datetime | str | None = None
    until: dt.datetime | str | None = None
    status: str | None = None
    equals: Mapping[str, str] = field(default_factory=dict)
    failure_mode: str | None = None
    min_cost_usd: float | None = None
    max_cost_usd: float | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    text: str | None = None

    def with_(self, **changes: Any) -> RunFilter:
        return replace(self, **changes)

    def where(self, failures_table: bool = True) -> tuple[str, list[Any]]:
        """The WHERE clause (without the keyword; `true` when empty) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        try:  # the times every command takes (ISO time or date, UTC unless it says; `now`; `24h` before now)
            since, until = parse_window(self.since, self.until)
        except TimeSpecError as e:
            raise FilterError(str(e)) from None
        if since is not None:
            clauses.append("started_at >= ?::TIMESTAMPTZ")
            params.append(since)
        if until is not None:
            clauses.append("started_at < ?::TIMESTAMPTZ")
            params.append(until)
        if self.status is not None:
            clauses.append("status = ?")
            params.append(self.status)
        for dim, value in self.equals.items():
            if value is None or value == "":
                continue
            expr, dim_params = _dimension_expr(dim)
            if value == NONE_VALUE:
                clauses.append(f"{expr} IS NULL")
                params += dim_params
            else:
                clauses.append(f"{expr} = ?")
                params += [*dim_params, str(value)]
        for col, op, v in (("cost_usd", ">=", self.min_cost_usd), ("cost_usd", "<=", self.max_cost_usd),
                           ("duration_ms", ">=", self.min_duration_ms), ("duration_ms", "<=", self.max_duration_ms)):
            if v is not None:
                clauses.append(f"{col} {op} ?")
                params.append(float(v))
        if self.failure_mode:
            if not failures_table:
                raise FilterError("this database has no failures table: failure modes are not classified")
            clauses.append("run_id IN (SELECT run_id FROM failures WHERE mode = ?)")
            params.append(self.failure_mode)
        if self.text:  # the matches `prepare` put in the session's `_search_hits`
            clauses.append("run_id IN (SELECT run_id FROM _search_hits)")
        return (" AND ".join(clauses) or "true"), params


def _dimension_expr(dim: str) -> tuple[str, list[Any]]:
    """The SQL of a filter's dimension: a checked run column, or an attribute key or JSON path (bound)."""
    if dim in DIMENSIONS:
        return f'"{dim}"', []
    if dim.startswith(("attr:", "json:")):
        try:
            d = key_dimension(dim)
        except ValueError as e:
            raise FilterError(str(e)) from None
        return d.expr, list(d.params)
    raise FilterError(f"cannot filter on {dim!r}; dimensions: {', '.join(DIMENSIONS)}, attr:KEY, json:$.PATH")


def check_dimension(dim: str) -> None:
    """Raise FilterError unless runs can be filtered on `dim`."""
    _dimension_expr(dim)


def prepare(lens: Store, flt: RunFilter, failures_table: bool | None = None) -> tuple[str, list[Any]]:
    """The filter's WHERE clause and parameters on this database, its search run first when it has
    one (the matches go to the session's temp table `_search_hits`: explore.search.prepare)."""
    classified = has_table(lens, "failures") if failures_table is None else failures_table
    if flt.text:
        try:
            S.prepare(lens, flt.text)
        except S.SearchError as e:
            raise FilterError(str(e)) from None
    return flt.where(classified)


TOTAL_TOKENS = ("CASE WHEN r.input_tokens IS NULL AND r.output_tokens IS NULL THEN NULL "
                "ELSE coalesce(r.input_tokens, 0) + coalesce(r.output_tokens, 0) END")


def _check_sort(sort: str) -> str:
    if sort not in RUN_COLUMNS and sort != "total_tokens":
        raise FilterError(f"cannot sort by {sort!r}; run columns: {', '.join(RUN_COLUMNS)}")
    return sort


def find_runs(
    lens: Store, flt: RunFilter | None = None, sort: str = "started_at", descending: bool = True,
    limit: int = 20, offset: int = 0, columns: tuple[str, ...] = PAGE_COLUMNS, describe: bool = False,
) -> pl.DataFrame:
    """One page of matching runs, sorted in DuckDB (ties broken by run_id). Adds `total_tokens`, and
    `failure_modes` (comma-separated) when the database classifies failures. `describe`: also `name`
    and `preview`, what a person scans a list by (see `describe_runs`)."""
    flt = flt or RunFilter()
    sort = _check_sort(sort)
    for c in columns:
        if c not in RUN_COLUMNS:
            raise FilterError(f"unknown run column {c!r}")
    classified = has_table(lens, "failures")
    if flt.text and sort in S.PAGE_KEYS:
        where, params = _search_page(lens, flt, classified, sort, descending, int(limit) + int(offset))
    else:
        where, params = prepare(lens, flt, classified)
    cols = ", ".join(f'r."{c}"' for c in dict.fromkeys(("run_id", *columns)))
    order = TOTAL_TOKENS if sort == "total_tokens" else f'r."{sort}"'
    direction = "DESC" if descending else "ASC"
    # The page first (top-N in DuckDB), then the failure modes of its few runs only: a join on the
    # detections of the page's runs (a correlated subquery per run was decorrelated into an aggregate of
    # every detection: find_runs took 95 ms instead of 20 ms on 1M runs with 251k detections).
    modes, join = (", m.failure_modes", " LEFT JOIN (SELECT f.run_id, string_agg(DISTINCT f.mode, ', ' ORDER BY "
                   "f.mode) AS failure_modes FROM failures f WHERE f.run_id IN (SELECT run_id FROM p) "
                   "GROUP BY f.run_id) m USING (run_id)") if classified else ("", "")
    q = (f"WITH p AS (SELECT {cols}, {TOTAL_TOKENS} AS total_tokens, {order} AS _sort "  # noqa: S608 - checked names
         f"FROM runs r WHERE {where} ORDER BY _sort {direction} NULLS LAST, r.run_id LIMIT ? OFFSET ?) "
         f"SELECT p.* EXCLUDE (_sort){modes} FROM p{join} ORDER BY _sort {direction} NULLS LAST, p.run_id")
    df = lens.sql(q, [*params, int(limit), int(offset)])
    if describe:
        df = describe_runs(lens, df)
    return df if "run_id" in columns else df.drop("run_id")


def _search_page(lens: Store, flt: RunFilter, classified: bool, sort: str, descending: bool,
                 need: int) -> tuple[str, list[Any]]:
    """The filter's clause, its search's `_search_hits` filled with enough matches for the first `need` runs
    in `sort` order (explore.search.page: from the index a round at a time, until `need` of the filter's runs
    come at or before the round's bound, or every match is there)."""
    where, params = flt.where(classified)
    rest, rest_params = flt.with_(text=None).where(classified)
    before = S.page_before(where, sort, descending)
    try:
        for bound in S.page(lens, str(flt.text), sort, descending, need, rest, rest_params):
            if bound is None or int(lens.con.execute(before, [*params, bound]).fetchall()[0][0]) >= need:
                break
    except S.SearchError as e:
        raise FilterError(str(e)) from None
    return where, params


def count_runs(lens: Store, flt: RunFilter | None = None) -> int:
    """How many runs match. A search is counted from the index (explore.search.count: alone, or with other
    filters of fewer runs than its matches), else every match of the search is collected and the runs of
    the other filters counted among them."""
    flt = flt or RunFilter()
    if flt.text:
        rest, rest_params = flt.with_(text=None).where(has_table(lens, "failures"))
        try:
            n = S.count(lens, flt.text, rest, rest_params)
        except S.SearchError as e:
            raise FilterError(str(e)) from None
        if n is not None:
            return n
    where, params = prepare(lens, flt)
    rows = lens.con.execute(f"SELECT count(*) FROM runs WHERE {where}", params).fetchall()  # noqa: S608 - built from checked names
    return int(rows[0][0])


def dimension_values(lens: Store, dimension: str, flt: RunFilter | None = None, limit: int = 200) -> pl.DataFrame:
    """The most common values of a dimension among the matching runs: `value`, `runs`
    (NULL shown as "(none)")."""
    if dimension not in DIMENSIONS:
        raise FilterError(f"not a dimension: {dimension!r}; dimensions: {', '.join(DIMENSIONS)}")
    where, params = prepare(lens, flt or RunFilter())
    q = (f"SELECT coalesce(\"{dimension}\", '{NONE_VALUE}') AS value, count(*) AS runs FROM runs "  # noqa: S608 - checked name
         f"WHERE {where} GROUP BY ALL ORDER BY runs DESC, value LIMIT ?")
    return lens.sql(q, [*params, int(limit)])


def failure_modes(lens: Store) -> list[str]:
    """The failure modes present in the database (empty when failures are not classified)."""
    if not has_table(lens, "failures"):
        return []
    return lens.sql("SELECT DISTINCT mode FROM failures ORDER BY mode")["mode"].to_list()


def time_bounds(lens: Store) -> tuple[dt.datetime | None, dt.datetime | None]:
    rows = lens.con.execute("SELECT min(started_at), max(started_at) FROM runs").fetchall()
    return rows[0][0], rows[0][1]


# --- what a person scans a list of runs by --------------------------------------------------------------
_ID = re.compile(r"^(?:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}|[0-9a-fA-F]{16,}|\d+)$")
PREVIEW_CHARS = 200
_TRANSCRIPT_USER = re.compile(r"(?:^|\n)(?:user|human):[ \t]*(.*?)(?=\n(?:system|user|human|assistant|ai|tool):|\Z)",
                              re.S | re.I)
# The page's runs: their root span's name, and the input of their first LLM call (for a run whose own
# input is empty). One aggregate over the page's spans (no correlated subquery: ClickHouse runs this too).
DESCRIBE = """
WITH page AS (SELECT unnest(?::VARCHAR[]) AS run_id),
s AS (SELECT run_id, span_id, name, kind, input, started_at FROM spans WHERE run_id IN (SELECT run_id FROM page))
SELECT r.run_id,
       any_value(s.name) FILTER (WHERE s.span_id = r.root_span_id) AS root_name,
       arg_min(s.input, s.started_at) FILTER (WHERE s.kind = 'llm' AND s.input IS NOT NULL) AS llm_input
FROM runs r LEFT JOIN s ON s.run_id = r.run_id
WHERE r.run_id IN (SELECT run_id FROM page)
GROUP BY r.run_id
"""


def looks_like_id(name: str | None) -> bool:
    """A UUID, a long hex string or a number: a name that tells a person nothing."""
    return bool(name and _ID.match(name.strip()))


def run_name(agent_name: str | None, root_name: str | None) -> str | None:
    """What to call a run in a list: its agent's name, else (no name, or an id) its root span's name."""
    if agent_name and not looks_like_id(agent_name):
        return agent_name
    return root_name or agent_name


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # parts: [{"type": "text", "text": ...}]
        texts = [p.get("text") or p.get("content") for p in content if isinstance(p, dict)]
        texts += [p for p in content if isinstance(p, str)]
        joined = " ".join(t for t in texts if isinstance(t, str) and t)
        return joined or None
    if isinstance(content, dict):
        return _content_text(content.get("parts") or content.get("text") or content.get("content"))
    return None


def _last_user(messages: list[Any]) -> str | None:
    for m in reversed(messages):
        if isinstance(m, dict) and (m.get("role") in ("user", "human") or m.get("type") == "human"):
            text = _content_text(m.get("content") if "content" in m else m.get("parts"))
            if text:
                return text
    return None


def _from_json(v: Any, depth: int = 0) -> str | None:
    """The user's words in a JSON input: the last user message of a message list (also under
    `messages`), else a prompt-like field, else the first string argument."""
    if depth > 3:
        return None
    if isinstance(v, list):
        if any(isinstance(m, dict) and ("role" in m or "type" in m) for m in v):
            return _last_user(v)
        for item in v:
            if isinstance(item, str) and item.strip():
                return item
        return None
    if isinstance(v, dict):
        for key in ("messages", "new_message", "input", "prompt", "query", "question", "args", "message", "text"):
            if key in v:
                got = _from_json(v[key], depth + 1) if not isinstance(v[key], str) else v[key]
                if got is None and isinstance(v[key], dict):
                    got = _content_text(v[key].get("parts") or v[key].get("content"))
                if got:
                    return got
        return None
    return v if isinstance(v, str) else None


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str | None:
    """One line of a run's input a person can scan: the last user message, not the system prompt or a
    raw JSON blob; whitespace collapsed, cut at `limit` characters."""
    if text is None:
        return None
    out: str | None = text
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        try:
            out = _from_json(json.loads(stripped))
        except ValueError:
            out = text
    if out is None:
        return None
    turns = _TRANSCRIPT_USER.findall(out)  # a transcript ("system: ...\nuser: ..."): its last user turn
    if turns and (out.startswith(("system:", "user:")) or "\nuser:" in out):
        out = turns[-1]
    line = " ".join(out.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_runs(lens: Store, page: pl.DataFrame) -> pl.DataFrame:
    """A page of runs (with `run_id`, `agent_name`, `input`) with `name` (run_name) and `preview`
    (preview of the run's input, else of its first LLM call's) added: one query for the page's runs."""
    if page.height == 0 or "run_id" not in page.columns:
        return page.with_columns(pl.lit(None, pl.String).alias("name"), pl.lit(None, pl.String).alias("preview"))
    extra = {r["run_id"]: r for r in lens.sql(DESCRIBE, [page["run_id"].to_list()]).iter_rows(named=True)}
    agents = page["agent_name"].to_list() if "agent_name" in page.columns else [None] * page.height
    inputs = page["input"].to_list() if "input" in page.columns else [None] * page.height
    names, previews = [], []
    for rid, agent, text in zip(page["run_id"].to_list(), agents, inputs, strict=True):
        e = extra.get(rid, {})
        names.append(run_name(agent, e.get("root_name")))
        previews.append(preview(text) or preview(e.get("llm_input")))
    return page.with_columns(pl.Series("name", names, pl.String), pl.Series("preview", previews, pl.String))
