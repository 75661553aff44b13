"""Scale-out: the canonical tables and the metric SQL on ClickHouse (issue 26) and on Spark over a Parquet
lake (issue 27; docs/scale-out.md).

Per-run work stays in DuckDB inside the ingest processes (normalising, building runs, pricing, failure
classifiers: agentlens.ingest as ever, on a local work database); they write the canonical rows to
ClickHouse (ship.py). Cross-run work (golden signals, costs, budgets, the failure report, explore queries)
runs on ClickHouse: the same named SQL, translated (translate.py) and run only when the conformance suite
passed it (conformance.py).

    url.py          the store URLs: clickhouse://host:8123/db, clickhouse+chdb:///dir
    engine.py       chdb (ClickHouse in this process) and a server (clickhouse-connect), one interface
    ddl.py          the contract as ClickHouse tables (ReplacingMergeTree, versions, dedup views)
    translate.py    DuckDB SQL -> ClickHouse SQL: sqlglot and an ordered list of rules
    conformance.py  the statements that passed the conformance suite
    connection.py   what agentlens uses of DuckDB's connection, on ClickHouse
    ship.py         an ingest's rows from its work database to ClickHouse
    migrate.py      a whole DuckDB database to ClickHouse (`agentlens store migrate --to URL`)
    spark.py        a Spark session with agentlens's settings; a standalone cluster of this machine's own
    sparksql.py     DuckDB SQL -> Spark SQL: sqlglot and an ordered list of rules (the generic ones shared)
    sparkconn.py    what agentlens uses of DuckDB's connection, on a Parquet lake read by Spark
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .url import SparkURL, StoreURL, StoreURLError, is_spark_url, is_store_url, parse, parse_spark, spark_url

if TYPE_CHECKING:
    from .connection import ClickHouseConnection
    from .sparkconn import SparkConnection

__all__ = ["SparkURL", "StoreURL", "StoreURLError", "connect", "is_spark_url", "is_store_url", "parse",
           "parse_spark", "spark_connect", "spark_url"]


def connect(url: str | StoreURL) -> ClickHouseConnection:
    """A connection to the ClickHouse store at `url`, its tables created or brought up to the contract."""
    from .connection import ClickHouseConnection  # sqlglot and the engine: only for a ClickHouse store

    return ClickHouseConnection(parse(url) if isinstance(url, str) else url)


def spark_connect(url: str | SparkURL, spark: object = None) -> SparkConnection:
    """The lake of `spark://host:port?lake=DIR` read on that Spark cluster (read-only); `spark`: a SparkSession
    to work in (else one is started on the master)."""
    from .sparkconn import SparkConnection  # sqlglot and pyspark: only for a lake on Spark

    return SparkConnection(parse_spark(url) if isinstance(url, str) else url, spark)
