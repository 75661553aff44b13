from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentlens

ROOT = Path(__file__).resolve().parents[1]
REAL_TRACES = ROOT.parent / "shared" / "real_traces"
SAMPLES = ROOT / "sample_traces"


@pytest.fixture
def real_traces() -> Path:
    if not REAL_TRACES.is_dir():
        pytest.skip("../shared/real_traces is not beside this checkout")
    return REAL_TRACES


@pytest.fixture
def lens(tmp_path: Path):
    lens = agentlens.open(tmp_path / "test.duckdb")
    yield lens
    lens.close()


def kv(key: str, value: Any) -> dict[str, Any]:
    """An OTLP KeyValue with the AnyValue type chosen from the Python type."""
    return {"key": key, "value": any_value(value)}


def any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [kv(k, x) for k, x in v.items()]}}
    return {"stringValue": v}


def span(trace: str, span_id: str, parent: str | None, name: str, start_ns: int, end_ns: int,
         attrs: dict[str, Any] | None = None, status: dict | None = None, events: list | None = None,
         kind: int = 1) -> dict[str, Any]:
    s: dict[str, Any] = {
        "traceId": trace, "spanId": span_id, "name": name, "kind": kind,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
        "attributes": [kv(k, v) for k, v in (attrs or {}).items()], "status": status or {},
    }
    if parent:
        s["parentSpanId"] = parent
    if events:
        s["events"] = events
    return s


def doc(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [kv(k, v) for k, v in (resource or {"service.name": "svc"}).items()]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
    }]}


def jsonl(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def clickhouse_url(chdb_root: Path, database: str) -> str:
    """A fresh ClickHouse database for a test: on the server of $AGENTLENS_CLICKHOUSE_URL when set
    (clickhouse://user:password@host:8123/anything; the database `agentlens_test_NAME` is dropped first),
    else in this process's chdb folder."""
    import os

    server = os.environ.get("AGENTLENS_CLICKHOUSE_URL")
    if not server:
        return f"clickhouse+chdb://{chdb_root}?database={database}"
    from agentlens.scale import parse
    from agentlens.scale.engine import ServerEngine

    u = parse(server)
    name = f"agentlens_test_{database}"
    admin = ServerEngine(u)
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.close()
    head, _, _ = server.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name if head.count("/") > 2 else head + "/" + name


@pytest.fixture(scope="session")
def chdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder of ClickHouse in this process (chdb opens one per process): every ClickHouse test
    uses it, each in a database of its own (`clickhouse+chdb:///DIR?database=NAME`)."""
    pytest.importorskip("chdb")
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real standalone Spark cluster: `$AGENTLENS_SPARK_MASTER` (.ci/run starts one with `agentlens spark
    cluster`), else a master and two one-core workers started here for the session (~35 s) and stopped after."""
    pytest.importorskip("pyspark")
    url = os.environ.get("AGENTLENS_SPARK_MASTER")
    if url:
        yield url
        return
    from agentlens.scale.spark import LocalCluster, SparkError

    try:
        cluster = LocalCluster(workers=2, cores=1, memory="2g", workdir=tmp_path_factory.mktemp("spark")).start()
    except SparkError as e:
        pytest.skip(f"no Spark cluster: {e}")
    try:
        yield cluster.master
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def spark(spark_master: str) -> Iterator[object]:
    """One SparkSession on that cluster for the whole test session (a session costs ~20-45 s to start)."""
    from agentlens.scale.spark import session

    s = session(spark_master, app="agentlens-tests")
    yield s
    s.stop()
