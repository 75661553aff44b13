"""Apache Spark for agentlens: a session on a cluster (`spark://HOST:PORT`, `local[N]`), and a standalone
cluster of this machine's own for trying it, tests and benchmarks (`agentlens spark cluster`).

PyPI's `pyspark` carries Spark's jars and `bin/spark-class`; a Java runtime (17 or newer: Debian's
`openjdk-17-jre-headless`) runs them. The executors run Python tasks with the interpreter agentlens runs in
(`spark.pyspark.python`), so on a real cluster every node needs agentlens installed in a Python of the same
path (or set `PYSPARK_PYTHON`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SparkError(RuntimeError):
    """Spark cannot be used as asked (the message says why and what to do)."""


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError:
        raise SparkError("Spark needs the spark extra: pip install 'agentlens[spark]' (pyspark and its jars)") from None
    return Path(pyspark.__file__).parent


def java_env() -> dict[str, str]:
    """The environment Spark's scripts need: SPARK_HOME, and JAVA_HOME found from `java` on PATH."""
    env = dict(os.environ)
    env["SPARK_HOME"] = str(spark_home())
    if not env.get("JAVA_HOME"):
        java = shutil.which("java")
        if java is None:
            raise SparkError("Spark needs a Java runtime (17 or newer) and none is on PATH: on Debian or Ubuntu, "
                             "apt-get install openjdk-17-jre-headless")
        env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("SPARK_CONF_DIR", str(Path(__file__).with_name("spark_conf")))  # errors only (log4j2.properties)
    return env


# Settings every agentlens session runs with: times in UTC (the canonical schema's TIMESTAMPTZ), Arrow between
# the JVM and Python, and ANSI SQL off (Spark 4's default is on, which turns a failed cast into an error where
# DuckDB's TRY_CAST-free SQL never casts a bad value anyway; kept explicit so the semantics do not move).
SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
}


def session(master: str, app: str = "agentlens", conf: Mapping[str, str] | None = None) -> Any:
    """A SparkSession on `master` (`spark://HOST:PORT`, `local[N]`), with agentlens's settings."""
    env = java_env()
    for k in ("SPARK_HOME", "JAVA_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_LOCAL_IP", "SPARK_CONF_DIR"):
        os.environ.setdefault(k, env[k])
    # pyspark warns on every Arrow UDF that it "does not yet fully support pandas >= 3" (agentlens's tasks use
    # Arrow, not pandas): not a user's concern.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    from pyspark.sql import SparkSession

    b = SparkSession.builder.master(master).appName(app)
    for k, v in {**SETTINGS, "spark.pyspark.python": env["PYSPARK_PYTHON"], **(conf or {})}.items():
        b = b.config(k, v)
    try:
        s = b.getOrCreate()
    except Exception as e:  # py4j / JVM start failures: their first line says it
        raise SparkError(f"cannot start a Spark session on {master}: {str(e).strip().splitlines()[0]}") from None
    s.sparkContext.setLogLevel("ERROR")
    return s


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    """A standalone Spark cluster on 127.0.0.1: one master and `workers` workers of `cores` cores each, as
    separate JVM processes (what `start-master.sh` / `start-worker.sh` run), their logs in `workdir`."""

    workers: int = 2
    cores: int = 1
    memory: str = "2g"
    workdir: Path | None = None
    port: int = 0
    ui_port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> LocalCluster:
        env = java_env()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="agentlens-spark-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.ui_port = self.ui_port or _free_port()
        cls = str(spark_home() / "bin" / "spark-class")
        self._spawn([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(self.port), "--webui-port", str(self.ui_port)], env, "master")
        for i in range(self.workers):
            wdir = self.workdir / f"worker-{i}"
            wdir.mkdir(exist_ok=True)
            self._spawn([cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                         "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(_free_port()),
                         "--work-dir", str(wdir), self.master], env, f"worker-{i}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    self.stop()
                    raise SparkError(f"a Spark process exited with {p.returncode} while the cluster started "
                                     f"(logs in {self.workdir})")
            if self.alive_workers() >= self.workers:
                return self
            time.sleep(0.5)
        self.stop()
        raise SparkError(f"the Spark cluster did not start within {timeout:.0f} s (logs in {self.workdir})")

    def _spawn(self, cmd: list[str], env: dict[str, str], name: str) -> None:
        assert self.workdir is not None
        log = open(self.workdir / f"{name}.log", "wb")  # the process keeps it open
        self.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def status(self) -> dict[str, Any]:
        """The master's own account (its web UI's /json): workers, cores, applications."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as r:
            data: dict[str, Any] = json.load(r)
            return data

    def alive_workers(self) -> int:
        try:
            return int(self.status().get("aliveworkers", 0))
        except OSError:
            return 0

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
