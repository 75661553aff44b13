"""The golden-signals dashboard and the cost explorer, driven through their Python state.

Times in tests/viewdata.py: the nested and the malicious run start at 11:06:40 and 11:07:00 UTC; the
25 small runs at 12:06:40 + i min (i = 0..24), run i failing when i % 4 == 0 (0, 4, 8, 12, 16, 20, 24),
feature refund when i % 3 == 0, reported cost i * 0.01 USD."""

from __future__ import annotations

import datetime as dt
import math

import plotly.graph_objects as go
import pytest
from viewdata import EVIL, MANY_IDS, NESTED, build_template, copy_db

import agentlens
from agentlens.present import plots
from agentlens.widgets import CostExplorer, SignalsDashboard

H11 = dt.datetime(2026, 11, 18, 11, tzinfo=dt.UTC)
H12 = dt.datetime(2026, 11, 18, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def view_template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("viewdata"))


@pytest.fixture
def vlens(view_template, tmp_path):
    lens = agentlens.open(copy_db(view_template, tmp_path))
    yield lens
    lens.close()


def traffic(fig: go.Figure) -> list[go.Scatter]:
    return [tr for tr in fig.data if tr.yaxis == "y2"]  # panel 2: runs


@pytest.mark.slow
def test_signals_per_hour_and_the_runs_of_a_bucket(vlens):
    d = SignalsDashboard(vlens, every="1h")
    assert d.data["bucket"].to_list() == [H11, H12]
    assert d.data["runs"].to_list() == [2, 25] and d.data["errors"].to_list() == [0, 7]
    d.select_bucket(H12)
    assert d.runs.total == 25 and set(d.runs.page_df["run_id"]) <= set(MANY_IDS)
    d.select_bucket(H11)
    assert d.runs.total == 2
    assert "2026-11-18 11:00 to 2026-11-18 12:00 UTC" in d.bucket_info.value


def test_empty_buckets_show_as_zero_traffic(vlens):
    d = SignalsDashboard(vlens, every="15m")
    # 11:00 (2 runs), then 11:15, 11:30, 11:45 empty, then 12:00 (i = 0..8), 12:15 (9..23), 12:30 (24)
    (runs,) = traffic(d.figure)
    assert list(runs.y) == [2, 0, 0, 0, 9, 15, 1]
    errors = next(tr for tr in d.figure.data if tr.yaxis == "y3" and tr.name == "error_rate")
    assert errors.y[0] == 0.0 and all(math.isnan(v) for v in errors.y[1:4])  # no runs: no rate, a gap
    assert list(errors.y)[4:] == pytest.approx([3 / 9, 3 / 15, 1.0])


def test_grouped_signals_and_a_click_on_a_point(vlens):
    d = SignalsDashboard(vlens, every="1h", by="feature")
    h12 = d.data.filter(d.data["bucket"] == H12).sort("feature")
    # refund: i % 3 == 0 (9 runs), failing when i % 12 == 0 (0, 12, 24); billing: the other 16, 4 failing
    assert h12.select("feature", "runs", "errors").rows() == [("billing", 16, 4), ("refund", 9, 3)]
    refund = next(tr for tr in traffic(d.figure) if tr.name == "refund")
    i = [c[0] for c in refund.customdata].index(H12.isoformat())
    # what the click bridge sends for a click on that point: its customdata, as JSON
    d.plot.bridge._handle_custom_msg({"event": "click", "customdata": list(refund.customdata[i]), "curve": "refund"}, [])
    assert d.selected_bucket == H12 and d.selected_group == "refund"
    for bad in (None, "2026", ["not a time", None], [1, 2], [H12.isoformat()]):  # ignored
        d.plot.bridge._handle_custom_msg({"event": "click", "customdata": bad}, [])
        assert d.selected_bucket == H12 and d.selected_group == "refund"
    assert d.runs.total == 9 and d.runs.dims[0].value == "feature" and d.runs.values[0].value == "refund"
    # the malicious feature value is a legend entry: escaped
    names = {tr.name for tr in d.figure.data}
    assert "ord&lt;script&gt;window.__xss = 1&lt;/script&gt;" in names
    assert not any("<script" in n for n in names)


def test_signals_controls_and_bad_input(vlens):
    d = SignalsDashboard(vlens, every="1h", where={"feature": "refund"})
    assert d.data["runs"].to_list() == [1, 9]  # the nested run, then i % 3 == 0
    assert d.runs.total == 10
    d.since.value = "2026-11-18T12:00:00Z"
    assert d.data["runs"].to_list() == [9]
    d.until.value = "not a time"
    assert "'not a time' is not a time" in d.error and "is not a time" in d.message.value
    d.until.value = ""
    # refund runs i = 0, 3, ..., 24 go to customer c{i % 5}: c0 <- 0, 15; c1 <- 6, 21; c2 <- 12;
    # c3 <- 3, 18; c4 <- 9, 24
    d.by.value = "customer_id"
    h12 = d.data.filter(d.data["bucket"] == H12)
    assert dict(h12.select("customer_id", "runs").rows()) == {"c0": 2, "c1": 2, "c2": 1, "c3": 2, "c4": 2}
    d.select_bucket(H12, "c3")
    assert d.runs.total == 2 and {d.runs.dims[0].value, d.runs.dims[1].value} == {"feature", "customer_id"}


def test_cost_explorer(vlens):
    c = CostExplorer(vlens, by="feature", period=None)
    rows = {r["feature"]: (r["runs"], r["total_cost_usd"]) for r in c.data.to_dicts()}
    # refund: the nested run 0.25 + 0.5, and 0.01 * (0 + 3 + ... + 24) = 1.08 -> 1.83;
    # billing: 0.01 * (300 - 108) = 1.92; the malicious run has no price and no reported cost
    assert rows["refund"] == (10, pytest.approx(1.83)) and rows["billing"] == (16, pytest.approx(1.92))
    assert [v for k, v in rows.items() if k not in ("refund", "billing")] == [(1, None)]
    assert c.unpriced["model"].unique().to_list() == ["acme-test-model"]
    assert "acme-test-model" in c.unpriced_panel.value
    # the most expensive runs, with a trace one click away
    assert c.runs.page_df["run_id"][:2].to_list() == [NESTED, MANY_IDS[24]]
    assert c.runs.select_row(0).run_id == NESTED
    bars = c.figure.data[0]
    assert "ord&lt;script&gt;" in " ".join(map(str, bars.x)) and "<script" not in c.table.value


def test_cost_explorer_by_attribute_per_day_and_errors(vlens):
    c = CostExplorer(vlens, by="attr:customer_id", period="day")
    assert set(c.data["period"].cast(str)) == {"2026-11-18"}
    assert c.data.filter(c.data["attr:customer_id"] == "c0")["total_cost_usd"][0] == pytest.approx(0.5)
    # c0: runs 0, 5, 10, 15, 20 -> 0.01 * 50
    c.by.value = "nope"
    assert c.error.startswith("cannot group costs by 'nope'")
    c.by.value = "customer_id"
    c.since.value = "2026-11-18T12:00:00Z"
    assert c.error is None and c.data["runs"].sum() == 25 and c.runs.total == 25


def test_dashboard_bucket_opens_a_trace(vlens):
    d = SignalsDashboard(vlens, every="1h")
    d.select_bucket(H11)
    tv = d.runs.select_row(d.runs.page_df["run_id"].to_list().index(EVIL))
    assert tv.run_id == EVIL and "&lt;script&gt;" in tv.header.value
    assert isinstance(plots.fill_buckets(d.data, dt.timedelta(hours=1)), type(d.data))


def test_a_long_sparse_window_keeps_only_the_ends_of_each_empty_stretch():
    """A few runs over many hourly buckets (the real traces: 23 runs over 17 months) draw the same
    lines with only the first and last bucket of each empty stretch: the figure stays small."""
    import bisect

    import polars as pl

    hour = dt.timedelta(hours=1)
    starts = [0, 1, 2000, 2001, 2002, 5000, 9000]
    df = pl.DataFrame({
        "bucket": [H11 + i * hour for i in starts], "feature": ["a", "b", "a", "a", "b", "a", "b"],
        "runs": [1, 2, 3, 1, 1, 4, 2], "error_rate": [0.0, 0.5, 1.0, 0.0, 0.0, 0.25, 1.0],
    })
    for by in ([], ["feature"]):
        part = df.drop("feature") if not by else df
        dense = plots.fill_buckets(part, hour, by, dense=10**6)
        sparse = plots.fill_buckets(part, hour, by)
        assert dense.height == 9001 * (2 if by else 1) and sparse.height < 40
        assert sparse.join(dense, on=["bucket", *by], how="anti").height == 0  # a subset of the dense rows
        groups = dense.partition_by(by, as_dict=True) if by else {(): dense}
        for key, line in groups.items():
            kept = sparse.filter(*[pl.col(c) == v for c, v in zip(by, key, strict=True)]) if by else sparse
            kept_at = set(kept["bucket"].to_list())
            # every run of the data is kept; every left-out bucket is empty and lies between two kept
            # empty buckets of its line (a zero line and a gap in the rates across it, as when dense)
            assert set(line.filter(pl.col("error_rate").is_not_null())["bucket"]) <= kept_at
            rows = line.to_dicts()
            kept_rows = [i for i, r in enumerate(rows) if r["bucket"] in kept_at]
            for i, r in enumerate(rows):
                if r["bucket"] in kept_at:
                    continue
                assert r["runs"] == 0 and r["error_rate"] is None
                k = bisect.bisect(kept_rows, i)
                before, after = rows[kept_rows[k - 1]], rows[kept_rows[k]]
                assert before["runs"] == after["runs"] == 0 and before["error_rate"] is after["error_rate"] is None
    fig = plots.signal_panels(df.with_columns(latency_p95_ms=pl.lit(100.0), rate_limited_share=pl.lit(0.0)), hour,
                              "feature")
    assert len(fig.data) == 8 and all(len(tr.x) < 20 for tr in fig.data)  # 2 lines in 4 panels, not 9,001 points
