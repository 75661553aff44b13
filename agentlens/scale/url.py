"""Store URLs: which ClickHouse a `--store` (or `--db`, `$AGENTLENS_DB`, `agentlens.open(...)`) names.

    clickhouse://[user[:password]@]host[:port]/database     a ClickHouse server over HTTP (clickhouse-connect);
    clickhouses://...                                       the same over HTTPS (port 8443 by default)
    clickhouse+chdb:///path/to/dir                          ClickHouse's engine in this process (chdb), its data
    clickhouse+chdb://relative/dir                          in that folder (one process at a time holds it;
    clickhouse+chdb:///path/to/dir?database=name            a process opens one folder, with any databases in it)

    spark://host:port?lake=DIR                              the Parquet lake in DIR, read on the Spark cluster
                                                            whose master is at host:port (read-only)

Anything else is a DuckDB file path. A server's password may instead come from $AGENTLENS_CLICKHOUSE_PASSWORD
(used when the URL has none), which keeps it out of command lines and shell history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

SCHEMES = ("clickhouse", "clickhouses", "clickhouse+chdb", "spark")
PASSWORD_ENV = "AGENTLENS_CLICKHOUSE_PASSWORD"


class StoreURLError(ValueError):
    """A ClickHouse URL that cannot be used as written (the message says what is wrong)."""


@dataclass(frozen=True)
class StoreURL:
    kind: str  # "server" (clickhouse-connect) or "chdb" (the engine in this process)
    host: str = ""
    port: int = 0
    database: str = "agentlens"
    user: str = "default"
    password: str = ""
    secure: bool = False
    path: str = ""  # chdb: the data folder

    def display(self) -> str:
        """The URL without its password (for messages and `lens.path`)."""
        if self.kind == "chdb":
            db = "" if self.database == "agentlens" else f"?database={self.database}"
            return f"clickhouse+chdb://{self.path}{db}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class SparkURL:
    """A lake read on a Spark cluster: `spark://host:port?lake=DIR` (DIR a folder, or any URL Spark reads:
    s3a://, hdfs://, file://)."""

    master: str  # spark://host:port
    lake: str
    host: str = ""
    port: int = 0

    def display(self) -> str:
        return f"{self.master}?lake={self.lake}"


def spark_url(master: str, lake: str) -> str:
    """The URL of `--engine MASTER --lake DIR`."""
    return f"{master}?{urlencode({'lake': lake}, safe='/:')}"


def is_spark_url(target: object) -> bool:
    return isinstance(target, str) and target.lower().startswith("spark://")


def parse_spark(url: str) -> SparkURL:
    parts = urlsplit(url)
    if parts.scheme.lower() != "spark" or not parts.hostname:
        raise StoreURLError(f"{url}: not a Spark master's URL (spark://HOST:PORT)")
    try:
        port = parts.port or 7077
    except ValueError:
        raise StoreURLError(f"{url}: the port is not a number") from None
    lake = parse_qs(parts.query).get("lake", [""])[0]
    if not lake:
        raise StoreURLError(f"{url}: name the lake to read, spark://HOST:PORT?lake=DIR (--lake DIR on the command line)")
    return SparkURL(f"spark://{parts.hostname}:{port}", lake, parts.hostname, port)


def is_store_url(target: object) -> bool:
    return isinstance(target, str) and target.split("://", 1)[0].lower() in SCHEMES and "://" in target


def _check_database(url: str, database: str) -> None:
    if not database.replace("_", "").isalnum():
        raise StoreURLError(f"{url}: the database name {database!r} may hold letters, digits and _ only")


def parse(url: str) -> StoreURL:
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "clickhouse+chdb":
        path, _, q = rest.partition("?")  # clickhouse+chdb:///abs -> /abs; ://rel -> rel
        if not path.strip("/"):
            raise StoreURLError(f"{url}: name the data folder, e.g. clickhouse+chdb:///var/lib/agentlens")
        database = parse_qs(q).get("database", ["agentlens"])[0]
        _check_database(url, database)
        return StoreURL("chdb", path=path, database=database)
    if scheme not in ("clickhouse", "clickhouses"):
        raise StoreURLError(f"{url}: not a ClickHouse URL (clickhouse://host:8123/db or clickhouse+chdb:///dir)")
    parts = urlsplit(url)
    if not parts.hostname:
        raise StoreURLError(f"{url}: name the server, e.g. clickhouse://localhost:8123/agentlens")
    query = parse_qs(parts.query)
    secure = scheme == "clickhouses" or query.get("secure", ["0"])[0] in ("1", "true")
    database = parts.path.strip("/") or "agentlens"
    _check_database(url, database)
    return StoreURL(
        "server", host=parts.hostname, port=parts.port or (8443 if secure else 8123), database=database,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV, ""), secure=secure,
    )
