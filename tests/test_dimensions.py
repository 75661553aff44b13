"""The run dimensions are defined once (agentlens.core.dimensions, re-exported by agentlens.schema) and every
user takes its list from that definition: signals, costs, the failure report, the run explorer, the
widgets, budgets, rollups, alerts and the config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentlens
from agentlens import explore, schema
from agentlens.core import dimensions as D
from agentlens.core.config import DEFAULT_DIMENSIONS, Config, ConfigError
from agentlens.failures.report import BY
from agentlens.metrics import alerts as A
from agentlens.metrics import costs
from agentlens.metrics import rollups as RU
from agentlens.metrics import signals as S
from agentlens.pricing.budgets import load_budgets
from conftest import ROOT


def test_every_dimension_is_a_text_column_of_runs():
    runs = {c.name: c.type for c in schema.RUN_COLUMNS}
    spans = {c.name for c in schema.SPAN_COLUMNS}
    assert schema.RUN_DIMENSIONS is D.RUN_DIMENSIONS
    for d in D.RUN_DIMENSIONS:
        assert runs[d] == "VARCHAR", d
    assert set(D.LOOKUP_DIMENSIONS) == set(DEFAULT_DIMENSIONS)  # each lookup has its default keys ...
    assert set(D.LOOKUP_DIMENSIONS) <= spans                    # ... and is found on the spans too


def test_the_subsets_are_named_parts_of_the_one_definition():
    assert D.GROUP_DIMENSIONS == tuple(d for d in D.RUN_DIMENSIONS if d != "status")
    for subset in (D.GROUP_DIMENSIONS, D.LOOKUP_DIMENSIONS, D.ROLLUP_DIMENSIONS, D.BUDGET_DIMENSIONS):
        assert list(subset) == [d for d in D.RUN_DIMENSIONS if d in subset]  # same order, no strangers
    assert {"customer_id", "user_id", "session_id"}.isdisjoint(D.ROLLUP_DIMENSIONS)  # a row per run otherwise


def test_each_user_accepts_its_subset_and_nothing_else(tmp_path):
    assert S.DIMENSIONS == D.RUN_DIMENSIONS and S.GROUP_DIMENSIONS == D.GROUP_DIMENSIONS
    assert explore.DIMENSIONS == D.GROUP_DIMENSIONS
    assert [k for k in BY if k in D.RUN_DIMENSIONS] == list(D.RUN_DIMENSIONS)
    with agentlens.open(tmp_path / "d.duckdb") as lens:
        for d in D.GROUP_DIMENSIONS:
            assert S.signals(lens, by=d).columns[0] == d
            assert explore.count_runs(lens, explore.RunFilter(equals={d: "x"})) == 0
        for d in D.RUN_DIMENSIONS:
            assert S.signals(lens, where={d: "x"}).is_empty()
            assert costs.by(lens, by=d).columns[0] == d
        with pytest.raises(S.SignalsError):
            S.signals(lens, by="status")
        with pytest.raises(explore.FilterError):
            explore.count_runs(lens, explore.RunFilter(equals={"status": "ok"}))
        with pytest.raises(S.SignalsError, match="rollups are kept by feature, environment, agent_name, model, source"):
            RU.signals(lens, by="customer_id")
    for d in D.RUN_DIMENSIONS:
        caps = {"budgets": {"daily_usd": {d: {"*": 1.0}}}}
        if d in D.BUDGET_DIMENSIONS:
            assert load_budgets(Config.from_dict(caps)).daily_cap(d, "x") == 1.0
        else:
            with pytest.raises(ConfigError, match="is not a dimension"):
                load_budgets(Config.from_dict(caps))
        lookups = {"dimensions": {d: ["app.x"]}}
        if d in D.LOOKUP_DIMENSIONS:
            assert Config.from_dict(lookups).dimensions[d][0] == "app.x"
        else:
            with pytest.raises(ConfigError, match="is not a dimension"):
                Config.from_dict(lookups)
    rule = "[[threshold]]\nname = 'x'\nmetric = 'runs'\nabove = 1\nwindow = '1h'\n"
    assert A.rules_from_dict(__import__("tomllib").loads(rule + "by = ['service_name']\nwhere = { status = 'ok' }"))
    with pytest.raises(A.RulesError, match="not a run dimension to group by"):
        A.rules_from_dict(__import__("tomllib").loads(rule + "by = ['status']"))


def _literal_lists(tree: ast.AST) -> list[tuple[int, list[str]]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(items) == len(node.elts):
                out.append((node.lineno, items))
    return out


def test_no_module_keeps_a_dimension_list_of_its_own():
    """A literal list of three or more dimension names (a page's columns may name some among others)
    anywhere but core/dimensions.py is a second definition waiting to drift."""
    found = []
    for path in sorted((ROOT / "agentlens").rglob("*.py")):
        if path.name == "dimensions.py" or "samples" in path.parts:
            continue
        for line, items in _literal_lists(ast.parse(path.read_text(encoding="utf-8"))):
            dims = sum(i in D.RUN_DIMENSIONS for i in items)
            if dims >= 3 and dims >= 0.75 * len(items):
                found.append(f"{Path(path).relative_to(ROOT)}:{line}: {items}")
    assert not found, "\n".join(found)
