"""Results render themselves, and untrusted trace text is escaped in HTML."""

from __future__ import annotations

import polars as pl

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
