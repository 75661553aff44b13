"""The translation to Spark SQL (agentlens/scale/sparksql.py), rule by rule, without a cluster: each rule's
measured difference (the conformance suite, tests/test_spark_conformance.py, runs them on Spark)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from agentlens.scale import sparksql as sq
from agentlens.scale.translate import NotSupported


def spark(sql: str, params: object = None, tables: dict[str, dict[str, str]] | None = None) -> str:
    out = sq.translate(sql, params, tables)
    sqlglot.parse_one(out.sql, read="spark")  # what the rules write reads back as Spark SQL
    return out.sql


def test_list_order_kept() -> None:
    """sqlglot alone writes COLLECT_LIST(x): the ORDER BY dropped."""
    assert "COLLECT_LIST(x) " not in spark("SELECT list(x ORDER BY seq) AS l FROM spans") + " "
    assert "TRANSFORM(ARRAY_SORT(COLLECT_LIST(STRUCT(seq AS k, x AS v))), p -> p.v)" in spark(
        "SELECT list(x ORDER BY seq) AS l FROM spans")


def test_last_element() -> None:
    """sqlglot alone writes xs[-1] as xs[-2]."""
    out = spark("SELECT xs[-1] AS a, xs[1] AS b, xs[3] AS c FROM t")
    assert "ELEMENT_AT(xs, -1)" in out and "ELEMENT_AT(xs, 1)" in out and "ELEMENT_AT(xs, 3)" in out
    assert "-2" not in out


def test_to_json_keeps_null_fields() -> None:
    """Spark's to_json drops NULL fields unless told."""
    out = spark("SELECT to_json({a: x, b: NULL}) AS j FROM t")
    assert "TO_JSON(NAMED_STRUCT('a', x, 'b', NULL), MAP('ignoreNullFields', 'false'))" in out


def test_values_stay_bound() -> None:
    t = sq.translate("SELECT * FROM runs WHERE feature = ? AND started_at >= ? AND model = $m",
                     {"p0": "o'brien", "p1": dt.datetime(2026, 11, 10, 8, tzinfo=dt.UTC), "m": "x"} | {})
    assert "o'brien" not in t.sql and ":p0" in t.sql and ":m" in t.sql
    assert "CAST(:p1 AS TIMESTAMP)" in t.sql
    assert t.params == {"p0": "o'brien", "p1": "2026-11-10 08:00:00.000000", "m": "x"}


def test_positional_values() -> None:
    t = sq.translate("SELECT count(*) AS n FROM runs WHERE status = ? AND cost_usd > ?", ["ok", 0.5])
    assert t.params == {"p0": "ok", "p1": 0.5}


def test_time_bucket_from_duckdbs_origin() -> None:
    t = sq.translate("SELECT time_bucket($w::INTERVAL, started_at) AS b FROM runs", {"w": dt.timedelta(days=2)})
    assert "PMOD" in t.sql.upper() and "946857600000000" in t.sql
    assert t.params == {"w": 2 * 86400 * 10**6}


def test_shadowed_column_in_order_by() -> None:
    out = spark("SELECT run_id, arg_min(severity, x) AS severity FROM _rep GROUP BY run_id ORDER BY min(severity)",
                tables={"_rep": {"run_id": "VARCHAR", "severity": "VARCHAR", "x": "INTEGER"}})
    assert "MIN(_rep.severity)" in out


def test_duplicate_names_as_duckdb() -> None:
    assert "t.feature AS `feature_1`" in spark("SELECT 1 AS feature, t.feature FROM runs t")


def test_json_paths() -> None:
    out = spark("SELECT json_extract_string(attributes, $p) AS v FROM runs", {"p": "$.\"deployment.environment.name\""})
    assert "GET_JSON_OBJECT(attributes, '$[\\'deployment.environment.name\\']')" in out  # Spark reads a dotted key so


@pytest.mark.parametrize("sql", [
    "SELECT TRY_CAST(x AS INTEGER) FROM t",
    "SELECT rowid FROM runs",
    "SELECT regexp_replace(s, 'a', 'b') FROM t",  # DuckDB: the first match only
    "SELECT strftime(t, '%A') FROM t",
    "SELECT some_udf(x) FROM t",
])
def test_refused(sql: str) -> None:
    with pytest.raises(NotSupported):
        sq.translate(sql)
