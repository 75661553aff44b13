"""Every view tells the same story (issue 23): `show`, `signals`, `costs`, the rollups and the failure
classifiers count the same LLM calls and tokens per model, an agent_runs row is one LLM call of its model
in all of them, models are grouped by the name a person groups by, and every view of a call shows what it
cost by the rule the headline cost uses. On the bundled samples and ../shared/real_traces (skipped when
absent)."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

import agentlens
from agentlens import schema
from agentlens.core.config import Config
from agentlens.explore.trace import span_detail, trace_layout
from agentlens.metrics import costs, rollups, signals
from agentlens.present import plots
from agentlens.present.explore import trace_view
from agentlens.present.terminal import text as render_text
from agentlens.store import queries
from conftest import REAL_TRACES, SAMPLES


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    lens = agentlens.open(tmp_path_factory.mktemp("samples") / "s.duckdb")
    lens.ingest(SAMPLES)
    yield lens
    lens.close()


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if not REAL_TRACES.is_dir():
        pytest.skip("../shared/real_traces is not beside this checkout")
    lens = agentlens.open(tmp_path_factory.mktemp("real") / "r.duckdb")
    lens.ingest(REAL_TRACES)
    yield lens
    lens.close()


def per_model(df: pl.DataFrame, calls: str) -> dict[str, tuple[int, int | None, int | None]]:
    return {r["model"]: (r[calls], r["input_tokens"], r["output_tokens"]) for r in df.to_dicts()}


def check_views_agree(lens) -> dict[str, tuple[int, int | None, int | None]]:
    shown = per_model(lens.sql(queries.BY_MODEL), "llm_calls")
    assert shown == per_model(signals.llm_calls(lens), "calls")
    rollups.rollup(lens, every="1d")
    assert shown == per_model(signals.llm_calls(lens, every=None, source="rollups"), "calls")
    # the totals: calls as runs.llm_calls counts them, tokens as the run totals sum them
    totals = lens.sql("SELECT sum(llm_calls) AS calls, sum(input_tokens) AS i, sum(output_tokens) AS o FROM runs").row(0)
    assert (sum(v[0] for v in shown.values()), sum(v[1] or 0 for v in shown.values()),
            sum(v[2] or 0 for v in shown.values())) == totals
    assert signals.report(lens).facts["LLM calls"] == totals[0]
    overview = lens.overview().facts
    assert (overview["input tokens"], overview["output tokens"]) == totals[1:]
    # costs' token sums by feature, and show's feature table, add up to the same totals
    by_feature = costs.by(lens, by="feature")
    assert (by_feature["input_tokens"].sum(), by_feature["output_tokens"].sum()) == totals[1:]
    assert lens.sql(queries.BY_FEATURE)["tokens"].sum() == totals[1] + totals[2]
    return shown


def test_samples_views_agree_and_agent_runs_rows_are_calls(samples):
    shown = check_views_agree(samples)
    rows = samples.sql("SELECT r.llm_calls, s.kind, r.model, r.status FROM runs r JOIN spans s USING (run_id) "
                       "WHERE r.source = 'agent_runs'")
    assert rows.height == 72 and set(rows["llm_calls"]) == {1} and set(rows["kind"]) == {"llm"}
    # the agent_runs models are in the per-model tables with their calls and their errors
    by_model = {r["model"]: r for r in signals.llm_calls(samples).to_dicts()}
    for model, n in rows.group_by("model").len().iter_rows():
        failed = rows.filter((pl.col("model") == model) & (pl.col("status") == "error")).height
        others = samples.sql("SELECT count(*) FILTER (WHERE status = 'error') AS e, count(*) AS n FROM spans "
                             "WHERE kind = 'llm' AND model = ? AND source <> 'agent_runs'", [model]).row(0)
        assert (by_model[model]["calls"], by_model[model]["errors"]) == (n + others[1], failed + others[0])
        assert shown[model][0] == n + others[1]
    assert by_model["gpt-4o-mini"]["errors"] == 7  # the seven failed gpt-4o-mini rows of the issue
    # saturation: every rate-limited run has a rate-limited call, and the classifier agrees with both
    sat = signals.signals(samples, by=[], every=None).row(0, named=True)
    assert sat["rate_limited_calls"] >= sat["rate_limited_runs"] > 0
    classified = samples.sql("SELECT count(DISTINCT run_id) FROM failures WHERE mode = 'rate_limited'").item()
    assert classified == sat["rate_limited_runs"]
    # an agent_runs row's input totals its run's prompts: no context use over 100% from it
    assert (signals.llm_calls(samples)["context_utilization_max"].drop_nulls() <= 1).all()


def test_real_traces_views_agree_and_models_are_grouped(real):
    shown = check_views_agree(real)
    assert not [m for m in shown if "/" in m]
    recorded = real.sql(queries.BY_MODEL).filter(pl.col("model") == "gemini-2.5-flash")["recorded_as"].item()
    assert recorded.startswith("projects/") and recorded.endswith("/models/gemini-2.5-flash")
    assert not [m for m in costs.by(real, by="model")["model"].to_list() if m and "/" in m]
    # framework wrapper spans (agno, Vercel) are not calls: show counts what runs.llm_calls counts
    wrapped = real.sql("""
        SELECT count(*) FROM spans p WHERE kind = 'llm'
        AND EXISTS (SELECT 1 FROM spans c WHERE c.run_id = p.run_id AND c.parent_span_id = p.span_id AND c.kind = 'llm')""").item()
    assert wrapped > 0
    assert sum(v[0] for v in shown.values()) == real.sql("SELECT count(*) FROM spans WHERE kind = 'llm'").item() - wrapped


def test_the_headline_cost_and_every_view_of_a_call_agree(real, tmp_path):
    flagged = costs.reconciliation(real)
    assert flagged.height >= 2
    facts = costs.report(real).result().facts
    assert facts["headline cost"].startswith(f"the computed cost where the two disagree ({flagged.height} runs)")
    for rid in flagged["run_id"]:
        run = real.sql("SELECT * FROM runs WHERE run_id = ?", [rid]).row(0, named=True)
        assert run["cost_usd"] == run["computed_cost_usd"] != run["reported_cost_usd"]
        layout = trace_layout(real, rid)
        calls = layout.filter(pl.col("computed_cost_usd").is_not_null())
        # each call's cost is its computed cost; the run's cost is the sum of its calls'
        assert calls["cost_usd"].to_list() == calls["computed_cost_usd"].to_list()
        assert calls["cost_usd"].sum() == pytest.approx(run["cost_usd"], rel=1e-12)
        differing = layout.filter(pl.col("cost_differs"))
        assert differing.height > 0
        row = differing.row(0, named=True)
        hover = plots._hover(row, [])
        assert f"cost {plots.usd(row['computed_cost_usd'])} (computed; reported {plots.usd(row['reported_cost_usd'])})" in hover
        detail = span_detail(real, rid, row["span_id"]).html()
        assert "reported cost (USD)" in detail and "computed; they differ" in detail
        text = render_text(trace_view(run, layout, pl.DataFrame(), 200), 200)
        header = next(line for line in text.splitlines() if line.startswith("span "))
        assert header.split()[-2:] == ["cost", "reported"]  # the other figure in a column beside the cost
    # "reported": the source's figure wherever there is one, in the runs and in the trace view alike
    with agentlens.open(tmp_path / "rep.duckdb", Config.from_dict({"pricing": {"headline_cost": "reported"}},
                                                                  "agentlens.toml")) as rep:
        rep.ingest(REAL_TRACES / "langfuse_framework_traces")
        for rid in flagged["run_id"]:
            run = rep.sql("SELECT * FROM runs WHERE run_id = ?", [rid]).row(0, named=True)
            assert run["cost_usd"] == run["reported_cost_usd"]
            layout = trace_layout(rep, rid).filter(pl.col("cost_differs"))
            assert layout["cost_usd"].to_list() == layout["reported_cost_usd"].to_list()
        assert 'headline_cost = "reported"' in costs.report(rep).result().facts["headline cost"]


def test_samples_calls_show_their_computed_cost(samples):
    """No sample span reports a cost; the views show each priced call's computed one."""
    rid = samples.sql("SELECT run_id FROM runs WHERE source = 'otlp' AND computed_cost_usd > 0 "
                      "ORDER BY llm_calls DESC, run_id LIMIT 1").item()
    layout = trace_layout(samples, rid)
    calls = layout.filter(pl.col("kind") == "llm")
    assert calls["reported_cost_usd"].null_count() == calls.height
    assert calls["cost_usd"].drop_nulls().sum() == pytest.approx(
        samples.sql("SELECT cost_usd FROM runs WHERE run_id = ?", [rid]).item(), rel=1e-12)
    row = calls.filter(pl.col("cost_usd").is_not_null()).row(0, named=True)
    assert f"cost {plots.usd(row['cost_usd'])}" in plots._hover(row, [])
    assert "cost (USD)" in span_detail(samples, rid, row["span_id"]).html()


def test_stored_agent_runs_rows_become_calls_when_the_database_is_opened(tmp_path):
    """Migration 0007: rows stored when their span was of kind agent and llm_calls NULL."""
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)")
    for name, fn in schema.MIGRATIONS[:6]:
        fn(con)
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
    con.execute("INSERT INTO spans (run_id, span_id, kind, model, input_tokens, output_tokens, source) VALUES "
                "('1', 'run', 'agent', 'gpt-4o-mini', 100, 10, 'agent_runs'), "
                "('2', 'a', 'agent', 'gpt-4o-mini', 100, 10, 'otlp')")
    con.execute("INSERT INTO runs (run_id, source, llm_calls) VALUES ('1', 'agent_runs', NULL), ('2', 'otlp', 0)")
    con.close()
    with agentlens.open(db) as lens:
        assert lens.sql("SELECT run_id, kind FROM spans ORDER BY run_id").rows() == [("1", "llm"), ("2", "agent")]
        assert lens.sql("SELECT run_id, llm_calls FROM runs ORDER BY run_id").rows() == [("1", 1), ("2", 0)]


def test_a_missing_output_count_keeps_the_input_tokens(lens, tmp_path):
    rows = [{"id": i, "request": json.dumps({"model": "gpt-4o", "metadata": {"feature": "f"}}), "response": "ok",
             "tokens_in": 1000, "tokens_out": out, "created_at": "2026-11-10T10:00:00Z"}
            for i, out in ((1, 100), (2, None))]
    p = tmp_path / "agent_runs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lens.ingest(p)
    assert lens.sql(queries.BY_FEATURE).select("feature", "tokens").rows() == [("f", 2100)]
    assert per_model(lens.sql(queries.BY_MODEL), "llm_calls") == {"gpt-4o": (2, 2000, 100)}


def test_the_report_opens_on_the_worst_runs_readably_and_lightly(samples, tmp_path):
    from agentlens.present.report import auto_every, build_report, pick_runs

    rep = build_report(samples)
    assert [s.title for s in rep.sections][:2] == ["What is broken", "Trace view"]
    ids = pick_runs(samples, rep.options)
    assert len(ids) == 3 and len(rep.sections[1].figures) == 3
    worst = samples.sql("SELECT r.run_id, r.span_count, min(list_position(['critical', 'high', 'medium', 'low'], "
                        "f.severity)) AS rank, count(*) AS n FROM failures f JOIN runs r USING (run_id) GROUP BY ALL")
    first = worst.filter(pl.col("run_id") == ids[0]).row(0, named=True)
    assert first["rank"] == worst["rank"].min() == 1 and first["span_count"] > 1  # a critical run with a trace
    # buckets of a few runs each: at most one per 4 runs of the 120
    every = auto_every(samples, rep.options)
    first_at, last_at = samples.con.execute("SELECT min(started_at), max(started_at) FROM runs").fetchone()
    assert 6 <= (last_at - first_at) / every + 1 <= 30
    # each series of the golden signals has its own colour
    fig = next(s for s in rep.sections if s.title == "Golden signals").figures[0]
    colours = {t.name: t.line.color for t in fig.data}
    assert len(set(colours.values())) == len(colours) >= 6
    # light enough to attach to a message (plotly.js travels gzipped)
    size = rep.save(tmp_path / "report.html").stat().st_size
    assert size < 3_000_000
