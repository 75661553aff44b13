"""One reader of config sections (agentlens.core.config.Section): every section of the config, and the
alert rules file, is read through it, so each refuses unknown keys and names the file and the key."""

from __future__ import annotations

import ast
import json

import pytest

from agentlens import pricing
from agentlens.core.config import SECTIONS, Config, ConfigError, Invalid, Section, integer, read_toml
from agentlens.failures.policy import load_policy
from agentlens.metrics import alerts as A
from agentlens.pricing.budgets import load_budgets
from agentlens.pricing.models import model_info
from agentlens.sources.postgres import settings
from conftest import ROOT

# Each section's reader, called on a config holding only that section.
READERS = {
    "pricing": pricing.load_pricing,
    "models": lambda c: model_info("m", None, c),
    "budgets": load_budgets,
    "policy": load_policy,
    "sources": settings,
    "dimensions": lambda c: c,  # read by Config.from_dict itself
}


def test_every_section_has_a_reader():
    assert set(READERS) == set(SECTIONS)


@pytest.mark.parametrize("section, table", [
    ("pricing", {"tolerance": 1}), ("budgets", {"per_run": 5}), ("policy", {"max_tool_calls": 3}),
    ("sources", {"kafka": {}}), ("dimensions", {"team": ["app.team"]}), ("models", {"m": {"window": 5}}),
    ("policy", {"fleet": {"spikes": 1}}), ("sources", {"postgres": {"lookback": 1}}),
])
def test_unknown_keys_are_refused_naming_the_file_and_key(tmp_path, section, table):
    p = tmp_path / "agentlens.toml"
    p.write_text(_toml({section: table}))
    with pytest.raises(ConfigError) as e:
        READERS[section](Config.load(p))
    bad = next(iter(table))
    inner = table[bad]
    key = next(iter(inner)) if isinstance(inner, dict) and inner and section in ("models", "policy", "sources") else bad
    assert str(e.value).startswith(f"{p}: [{section}") and f"{key} is not " in str(e.value)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_a_section_that_is_not_a_table_names_itself(section):
    with pytest.raises(ConfigError, match=rf"c.toml: \[{section}\] must be a table"):
        READERS[section](Config.from_dict({section: 3}, "c.toml"))


def test_an_unknown_section_is_refused():
    with pytest.raises(ConfigError, match=r"c.toml: budget is not a section of the config; use one of dimensions"):
        Config.from_dict({"budget": {"run_usd": 4}}, "c.toml")


def test_values_nested_tables_and_arrays_are_named_as_toml_names_them():
    doc = Section.document({"a": {"b": {"x.y": -1}}, "t": [{"n": "one", "v": "x"}, 3]}, "f.toml")
    b = doc.table("a").table("b")
    with pytest.raises(ConfigError, match=r'^f.toml: \[a.b\]."x.y" must be a positive integer, got -1$'):
        b.value("x.y", integer(1))
    assert b.value("missing", integer(1), 7) == 7
    with pytest.raises(ConfigError, match=r"^f.toml: \[a.b\].missing is required$"):
        b.value("missing", integer(1))
    entries = doc.tables("t")
    first = next(entries).named(" (one)")
    with pytest.raises(ConfigError, match=r"^f.toml: \[\[t\]\] #1 \(one\).v is not a known key; use one of n$"):
        first.only(("n",))
    with pytest.raises(ConfigError, match=r"^f.toml: \[\[t\]\] #2 must be a table$"):
        next(entries)

    def no_bob(v):
        if v == "bob":
            raise Invalid("must not be bob ('bob' is taken)", show_value=False)
        return v

    with pytest.raises(ConfigError, match=r"^f.toml: \[\[t\]\] #1 \(one\).n must not be bob \('bob' is taken\)$"):
        Section({"n": "bob"}, "f.toml", "[[t]] #1 (one)").value("n", no_bob)


def test_the_rules_file_is_read_by_the_same_reader(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text("[[slo]]\nname = 'a'\nobjective = 0.99\nwindows = [{ long = '1h', short = '5m' }]\n")
    with pytest.raises(A.RulesError, match=r"rules.toml: \[\[slo\]\] #1 \(a\).windows #1.burn_rate is required"):
        A.load_rules(p)
    with pytest.raises(A.RulesError, match=r"nope\.toml: rules file not found"):
        A.load_rules(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        read_toml(tmp_path / "nope.toml")


def test_no_module_reads_the_raw_config_but_the_reader():
    """`config.raw` is read in core/config.py only: every other section goes through Section."""
    found = []
    for path in sorted((ROOT / "agentlens").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "agentlens/core/config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "raw" and "config" in ast.unparse(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def _toml(d: dict, prefix: str = "") -> str:
    out = f"[{prefix}]\n" if prefix else ""
    out += "".join(f"{k} = {json.dumps(v)}\n" for k, v in d.items() if not isinstance(v, dict))
    for k, v in d.items():
        if isinstance(v, dict):
            out += _toml(v, f"{prefix}.{k}" if prefix else k)
    return out
