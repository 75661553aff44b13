"""Results render themselves, and untrusted trace text is escaped in HTML."""

from __future__ import annotations

import polars as pl
import pytest

from agentlens.core.results import Result


def test_html_escapes_untrusted_text():
    evil = '<script>alert(1)</script><img src=x onerror=alert(1)> [click](javascript:alert(1))'
    r = Result("t <b>", {"k": evil}, {"tbl": pl.DataFrame({"x": [evil]})})
    out = r._repr_html_()
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "t &lt;b&gt;" in out


def test_text_and_dict_forms():
    r = Result("title", {"runs": 1234}, {"tbl": pl.DataFrame({"a": [1], "b": ["x"]})})
    assert "runs: 1,234" in str(r) and "tbl" in str(r)
    assert r.to_dict() == {"title": "title", "facts": {"runs": 1234}, "tables": {"tbl": [{"a": 1, "b": "x"}]}}


# --- one result base: every summary and report object renders and exports the same way ------------------
def _result_classes():
    """Every class in agentlens with a `result()` method, found in the source (not listed by hand)."""
    import ast
    import importlib

    from conftest import ROOT

    found = []
    for path in sorted((ROOT / "agentlens").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(f, ast.FunctionDef) and f.name == "result" for f in node.body):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                found.append(getattr(importlib.import_module(module), node.name))
    return found


def test_every_summary_and_report_derives_from_the_one_base():
    from agentlens.core.results import BaseResult

    classes = _result_classes()
    names = {c.__name__ for c in classes}
    assert {"Result", "IngestSummary", "RollupSummary", "AlertReport", "FailureReport", "ClassifySummary",
            "RepriceSummary", "Report"} <= names
    for cls in classes:
        assert issubclass(cls, BaseResult), cls
        # the rendering is the base's: no class keeps its own copy of the delegation to result()
        for method in ("__str__", "_repr_html_", "to_json", "to_csv", "to_parquet", "save"):
            own = cls.__dict__.get(method)
            assert own is None or cls.__name__ in ("BaseResult", "Result", "Report"), (cls, method)


def test_results_write_csv_parquet_json_html_and_text(tmp_path):
    import json

    import agentlens
    from agentlens import failures
    from agentlens.metrics import rollups
    from conftest import SAMPLES

    with agentlens.open(tmp_path / "s.duckdb") as lens:
        objects = {"ingest": lens.ingest(SAMPLES), "reprice": failures.reprice(lens),
                   "classify": failures.classify(lens), "rollup": rollups.rollup(lens, "1h"),
                   "failures": failures.report(lens, by="feature"), "overview": lens.overview()}
    for name, obj in objects.items():
        res = obj.result()
        assert json.loads(obj.save(tmp_path / f"{name}.json").read_text()) == json.loads(obj.to_json())
        assert json.loads(obj.to_json())["title"] == res.title
        if res.tables:
            first = next(iter(res.tables.values()))
            back = pl.read_parquet(obj.save(tmp_path / f"{name}.parquet"))
            assert back.equals(first)
            assert pl.read_csv(obj.save(tmp_path / f"{name}.csv")).height == first.height
            last = list(res.tables)[-1]
            assert obj.to_csv(table=last) == res.tables[last].write_csv()
        page = obj.save(tmp_path / f"{name}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and res.title in page
        assert obj.save(tmp_path / f"{name}.txt").read_text() == str(obj)
    fr = objects["failures"]
    assert fr.table().equals(fr.counts) and fr.table("worst runs").equals(fr.worst)
    with pytest.raises(KeyError, match="no table 'nope'; tables: failures by mode and feature, worst runs"):
        fr.table("nope")
    with pytest.raises(ValueError, match="cannot save as 'xlsx'"):
        fr.save(tmp_path / "f.xlsx")


def test_saved_html_escapes_untrusted_text(tmp_path):
    evil = "<script>alert(1)</script>"
    page = Result(evil, {evil: evil}, {evil: pl.DataFrame({evil: [evil]})}).save(tmp_path / "x.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
