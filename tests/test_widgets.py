"""The trace view and run explorer, driven through their Python state (no browser): filters, paging,
sorting, selection, the waterfall's figure data and the detail panel's HTML."""

from __future__ import annotations

import datetime as dt
import html
import json

import pytest
from viewdata import (
    CHAIN,
    EVIL,
    EVIL_NAME,
    EVIL_TOOL,
    IMG,
    LLM1,
    LLM2,
    MANY_IDS,
    NESTED,
    NS,
    RETR,
    ROOT,
    SCRIPT,
    SVG,
    TOOL,
    S,
    build_template,
    copy_db,
)

import agentlens
from agentlens.explore import FilterError, RunFilter, count_runs, find_runs
from agentlens.explore.trace import evidence_spans, failure_marks, span_detail, trace_layout
from agentlens.present import plots
from agentlens.widgets import RunExplorer, TraceView
from agentlens.widgets.clicks import figure_output
from conftest import doc, jsonl, span

MANY = MANY_IDS


@pytest.fixture(scope="module")
def view_template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("viewdata"))


@pytest.fixture
def vdb(view_template, tmp_path):
    return copy_db(view_template, tmp_path)


@pytest.fixture
def vlens(vdb):
    lens = agentlens.open(vdb)
    yield lens
    lens.close()


def browser_sends(box, **content):
    """What the click bridge's JavaScript sends (widgets/clicks.py), delivered as the kernel does."""
    box.bridge._handle_custom_msg(content, [])


def clear_failures(lens):
    """Forget what the classifier found at ingest, so a test states the failures it needs."""
    lens.con.execute("DELETE FROM failures")


def add_failure(lens, run_id, mode, span_id, explanation, evidence):
    lens.con.execute("INSERT INTO failures (run_id, mode, span_id, severity, explanation, evidence) "
                     "VALUES (?, ?, ?, 'high', ?, ?)", [run_id, mode, span_id, explanation, json.dumps(evidence)])


# --- the trace layout ------------------------------------------------------------------------------

def test_layout_is_depth_first_with_offsets(vlens):
    df = trace_layout(vlens, NESTED)
    assert df["span_id"].to_list() == [ROOT, LLM1, TOOL, LLM2, CHAIN, RETR]
    assert df["depth"].to_list() == [0, 1, 1, 1, 1, 2]
    # starts at 0, 0.1, 2, 3, 5, 6 s after the root
    assert df["offset_ms"].to_list() == [0.0, 100.0, 2000.0, 3000.0, 5000.0, 6000.0]
    assert df["n_exceptions"].to_list() == [0, 0, 1, 0, 0, 0]
    assert df["n_children"].to_list() == [4, 0, 0, 0, 1, 0]


def test_layout_keeps_orphans_and_parent_cycles(tmp_path):
    t = "1" * 32
    p = jsonl(tmp_path / "odd.jsonl", doc(
        span(t, "r" * 16, None, "root", NS, NS + 5 * S),
        span(t, "c" * 16, "r" * 16, "child", NS + S, NS + 2 * S),
        span(t, "0" * 15 + "1", "f" * 16, "orphan", NS + 3 * S, NS + 4 * S),      # parent never arrives
        span(t, "0" * 15 + "2", "0" * 15 + "3", "cycle a", NS + 2 * S, NS + 3 * S),  # a <-> b
        span(t, "0" * 15 + "3", "0" * 15 + "2", "cycle b", NS + 2 * S, NS + 3 * S),
    ))
    with agentlens.open(tmp_path / "o.duckdb") as lens:
        lens.ingest(p)
        df = trace_layout(lens, t)
    # tops by start (root, orphan), each followed by its subtree; the cycle last, at depth 0
    assert df["name"].to_list() == ["root", "child", "orphan", "cycle a", "cycle b"]
    assert df["depth"].to_list() == [0, 1, 0, 0, 0]
    assert df["row"].to_list() == [0, 1, 2, 3, 4]


def test_waterfall_figure_data(vlens):
    df = trace_layout(vlens, NESTED)
    fig = plots.trace_waterfall(df, {TOOL: ["tool_error"]}, selected=LLM2)
    traces = {tr.name: tr for tr in fig.data if tr.name != "labels"}
    assert set(traces) == {"agent", "llm", "tool", "chain", "retriever", "error", "failure evidence",
                           plots.SELECTED}
    llm = traces["llm"]
    assert list(llm.customdata) == [1, 3] and list(llm.base) == [100.0, 3000.0] and list(llm.x) == [1900.0, 2000.0]
    # the failed tool (row 2) is outlined in red and starred; LLM2 (row 3) outlined in black
    assert list(traces["error"].y) == [2] and traces["error"].marker.line.color == plots.ERROR_COLOR
    assert list(traces["failure evidence"].y) == [2]
    sel = traces[plots.SELECTED]
    assert list(sel.y) == [3] and list(sel.base) == [3000.0] and list(sel.x) == [2000.0]
    labels = {int(y): (x, t) for tr in fig.data if tr.name == "labels" for x, y, t in zip(tr.x, tr.y, tr.text, strict=True)}
    # names indented by depth: 2 units per level
    assert [labels[i][0] for i in range(6)] == [0.0, 2.0, 2.0, 2.0, 2.0, 4.0]
    assert labels[2][1] == "└\u00a0✖\u00a0execute_tool refund_order"
    assert "failure evidence: tool_error" in traces["tool"].hovertext[0]


# --- the trace view --------------------------------------------------------------------------------

def test_trace_view_selects_the_error_and_shows_its_exception(vlens):
    clear_failures(vlens)
    tv = TraceView(vlens, NESTED)
    assert tv.selected_span == TOOL  # no failures classified: the first error span
    panel = tv.detail_panel.value
    assert "PaymentGatewayError" in panel and "gateway said no" in panel and "Traceback: refund.py line 9" in panel
    assert "tool arguments" in panel and "&quot;order_id&quot;: &quot;A-1&quot;" in panel
    tv.step(1)
    assert tv.selected_span == LLM2 and tv.picker.value == LLM2
    assert "200" in tv.detail_panel.value and "0.5" in tv.detail_panel.value  # its tokens and cost
    tv.picker.value = RETR
    assert tv.selected_span == RETR
    tv.step(1)  # past the last row: stays
    assert tv.selected_span == RETR
    tv.next_error()  # wraps around to the failed tool
    assert tv.selected_span == TOOL


def test_trace_view_click_on_a_bar(vlens):
    tv = TraceView(vlens, NESTED)
    llm = next(tr for tr in tv.figure.data if tr.name == "llm")
    browser_sends(tv.plot, event="click", customdata=int(llm.customdata[0]), curve="llm")
    assert tv.selected_span == LLM1
    assert "please refund order A-1" in tv.detail_panel.value  # its input message
    # the black outline moved to the clicked bar, in the figure and in the plotly output drawn
    assert list(next(tr for tr in tv.figure.data if tr.name == plots.SELECTED).y) == [1]
    (out,) = tv.plot.output.outputs
    assert out == figure_output(tv.figure) and list(out["data"]) == ["application/vnd.plotly.v1+json"]
    # what a page could send that is not a row of this trace changes nothing
    for bad in ("1", -1, 99, True, None, 1.5, [1]):
        browser_sends(tv.plot, event="click", customdata=bad, curve="llm")
        assert tv.selected_span == LLM1
    browser_sends(tv.plot, event="click", customdata=3.0)  # JSON numbers may come as floats
    assert tv.selected_span == tv.layout_df["span_id"][3]
    browser_sends(tv.plot, event="nonsense")
    tv.plot.bridge._handle_custom_msg("not a dict", [])


def test_trace_view_highlights_failure_evidence(vlens):
    clear_failures(vlens)
    add_failure(vlens, NESTED, "silent_tool_failure", TOOL, "refund_order failed and the run went on",
                {"span_ids": [TOOL, LLM2]})
    marks = failure_marks(vlens, NESTED)
    assert evidence_spans(marks) == {TOOL: ["silent_tool_failure"], LLM2: ["silent_tool_failure"]}
    tv = TraceView(vlens, NESTED)
    assert "refund_order failed and the run went on" in tv.header.value
    stars = next(tr for tr in tv.figure.data if tr.name == "failure evidence")
    assert list(stars.y) == [2, 3]
    tv.select_span(LLM2)
    assert "failure: silent_tool_failure" in tv.detail_panel.value
    tv.next_evidence()
    assert tv.selected_span == TOOL
    assert "failure: silent_tool_failure" not in span_detail(vlens, NESTED, RETR).html()


def test_trace_view_scrolls_a_big_trace_to_the_selected_span(tmp_path):
    t = "2" * 32
    root = "f" * 16
    spans = [span(t, root, None, "root", NS, NS + 200 * S)]
    spans += [span(t, f"{i + 1:016x}", root, f"step {i}", NS + i * S, NS + i * S + S // 2) for i in range(120)]
    with agentlens.open(tmp_path / "b.duckdb") as lens:
        lens.ingest(jsonl(tmp_path / "big.jsonl", doc(*spans)))
        tv = TraceView(lens, t)
        assert tuple(tv.figure.layout.yaxis.range) == (plots.MAX_ROWS_SHOWN - 0.5, -0.5)  # first 40 rows
        tv.select_row(100)
        lo, hi = sorted(tv.figure.layout.yaxis.range)
        assert lo <= 100 <= hi and hi - lo == plots.MAX_ROWS_SHOWN
        # what is drawn (only the outline and the range serialised again) is that figure
        assert tv.plot.output.outputs == (figure_output(tv.figure),)


def test_untrusted_text_is_escaped_in_the_trace_view(vlens):
    tv = TraceView(vlens, EVIL)
    panels = [tv.header.value]
    for sid in tv.layout_df["span_id"]:
        tv.select_span(sid)
        panels.append(tv.detail_panel.value)
    strings = panels + [str(x) for tr in tv.figure.data for arr in (tr.hovertext, tr.text) if arr is not None
                        for x in arr]
    blob = "\n".join(strings)
    for raw in (SCRIPT, IMG, SVG, EVIL_NAME, "<img", "<svg", "<script", "<b>get_order"):
        assert raw not in blob, raw
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in blob
    assert "[click me](javascript:window.__xss=3)" in blob  # markdown stays literal text
    assert "href" not in "".join(panels)
    # the dropdown shows names as text (its labels are never HTML)
    assert any(EVIL_NAME in label for label, _ in tv.picker.options)


# --- finding runs ----------------------------------------------------------------------------------

def test_filters_compile_to_bound_parameters(vlens):
    flt = RunFilter(status="error", equals={"feature": "refund"}, min_cost_usd=0.1, text="x'; DROP TABLE runs; --")
    where, params = flt.where()
    # the search text is bound where the search runs (explore.search), never part of the clause
    assert "DROP" not in where and "x'" not in where and params == ["error", "refund", 0.1]
    assert count_runs(vlens, flt) == 0 and count_runs(vlens) == 27
    with pytest.raises(FilterError, match="cannot filter on 'input'"):
        RunFilter(equals={"input": "x"}).where()
    with pytest.raises(FilterError, match="cannot sort by 'nope'"):
        find_runs(vlens, sort="nope")
    with pytest.raises(FilterError, match="'yesterday' is not a time"):
        count_runs(vlens, RunFilter(since="yesterday"))


def test_explorer_pages(vlens):
    ex = RunExplorer(vlens, page_size=10)
    assert ex.total == 27 and ex.pages == 3 and ex.page_df.height == 10
    # newest first: the many runs start an hour after the others, run 24 last
    assert ex.page_df["run_id"][0] == MANY[24]
    assert "runs 1–10 of 27" in ex.pager.value and ex.prev_button.disabled
    ex.next_page()
    assert ex.page == 1 and ex.page_df["run_id"][0] == MANY[14] and "runs 11–20 of 27" in ex.pager.value
    ex.next_button.click()
    # the last page: many runs 4..0, then the evil and the nested run (started before them)
    assert ex.page_df["run_id"].to_list() == [*reversed(MANY[:5]), EVIL, NESTED] and ex.next_button.disabled
    # only the rows there are: no empty rows reserved for a full page
    assert ex.table.value.count("<tr data-al-click='open:") == 7 and "open:7" not in ex.table.value
    ex.next_page()  # stays on the last page
    assert ex.page == 2


def test_explorer_filters(vlens):
    ex = RunExplorer(vlens, page_size=10)
    ex.values[0].value = "refund"  # dimension 1 is feature: runs i % 3 == 0 (9) and the nested run
    assert ex.total == 10
    ex.status.value = "error"      # ... that failed: i % 12 == 0 -> 0, 12, 24
    assert ex.total == 3 and set(ex.page_df["run_id"]) == {MANY[0], MANY[12], MANY[24]}
    ex.reset()
    assert ex.total == 27
    ex.min_cost.value, ex.max_cost.value = "0.195", "0.5"  # i * 0.01 in [0.195, 0.5]: i = 20..24
    assert ex.total == 5
    ex.reset()
    ex.min_ms.value = "2000"  # (i + 1) * 100 ms >= 2000: i = 19..24, plus the nested (10 s) and evil (4 s) runs
    assert ex.total == 8
    ex.reset()
    ex.search.value = "REFUND ORDER A-1"  # the nested run's input message, any case
    assert ex.page_df["run_id"].to_list() == [NESTED]
    ex.reset()
    t0 = vlens.sql("SELECT started_at AS t FROM runs WHERE run_id = ?", [MANY[0]])["t"][0]  # run i: t0 + i min
    ex.since.value = (t0 + dt.timedelta(minutes=10)).isoformat()
    assert ex.total == 15  # runs 10..24
    ex.until.value = (t0 + dt.timedelta(minutes=12)).isoformat()
    assert ex.total == 2   # runs 10, 11 (until is exclusive)
    ex.reset()
    ex.dims[0].value = "customer_id"
    assert set(ex.values[0].options) >= {"c0", "c1", "c2", "c3", "c4", "c-nested"}
    ex.values[0].value = "c0"  # i % 5 == 0: 0, 5, 10, 15, 20
    assert ex.total == 5
    ex.set_filter(feature="refund", status="error")
    assert ex.total == 3 and ex.dims[0].value == "feature" and ex.status.value == "error"


def test_explorer_bad_input_keeps_the_page_and_says_why(vlens):
    ex = RunExplorer(vlens, page_size=10)
    before = ex.page_df
    ex.min_cost.value = "abc"
    assert ex.error == "cost ≥: not a number: 'abc'" and "not a number" in ex.message.value
    assert ex.page_df.equals(before)
    ex.min_cost.value = ""
    assert ex.error is None and ex.message.value == ""
    with pytest.raises(FilterError, match="unknown filter 'colour'"):
        ex.set_filter(colour="red")


def test_explorer_sorts(vlens):
    ex = RunExplorer(vlens, page_size=10, feature="refund", status="error")
    ex.sort_by("cost_usd")  # descending first: 0.24, 0.12, 0.0
    assert ex.page_df["run_id"].to_list() == [MANY[24], MANY[12], MANY[0]]
    assert ex.page_df["cost_usd"].to_list() == pytest.approx([0.24, 0.12, 0.0])
    assert "title='sort by cost $'>cost $ ▼</th>" in ex.table.value
    browser_sends(ex.table, event="action", value="sort:cost_usd")  # a click on that header: ascending
    assert ex.page_df["run_id"].to_list() == [MANY[0], MANY[12], MANY[24]]
    assert "cost $ ▲</th>" in ex.table.value and "▼" not in ex.table.value
    for bad in ("sort:nope", "sort:input; DROP", "sort:", "bogus"):  # not a shown column: nothing happens
        browser_sends(ex.table, event="action", value=bad)
        assert ex.sort == "cost_usd" and ex.error is None
    ex.reset()
    ex.sort_by("duration_ms")
    assert ex.page_df["run_id"][0] == NESTED  # 10 s, the longest
    ex.sort_by("total_tokens")  # nested 300 + 30 tokens; many run 24: 240 + 1
    assert ex.page_df["run_id"][:2].to_list() == [NESTED, MANY[24]]


def test_explorer_opens_the_selected_run(vlens):
    ex = RunExplorer(vlens, page_size=10, feature="refund", status="error")
    ex.sort_by("cost_usd")
    tv = ex.select_row(1)
    assert ex.selected_run == MANY[12] and tv.run_id == MANY[12] and ex.trace_box.children == (tv,)
    assert ex.table.value.count("class='al-selected'") == 1
    assert "<tr data-al-click='open:1' class='al-selected'>" in ex.table.value
    browser_sends(ex.table, event="action", value="open:0")  # a click on row 0 (or its "open" button)
    assert ex.trace_view is not None and ex.trace_view.run_id == MANY[24] and ex.trace_box.children == (ex.trace_view,)
    assert "<tr data-al-click='open:0' class='al-selected'>" in ex.table.value
    for bad in ("open:3", "open:-1", "open:x", "open:"):  # not a row of this page: nothing happens
        browser_sends(ex.table, event="action", value=bad)
        assert ex.trace_view.run_id == MANY[24]
    with pytest.raises(IndexError):
        ex.select_row(5)


def test_explorer_failure_mode_filter(vlens):
    clear_failures(vlens)
    add_failure(vlens, NESTED, "tool_error", TOOL, "refund_order failed", {})
    add_failure(vlens, MANY[3], "budget_exceeded", None, "over the cap", {})
    ex = RunExplorer(vlens, page_size=10)
    assert ex.mode.options == ("(any)", "budget_exceeded", "tool_error") and not ex.mode.disabled
    ex.mode.value = "tool_error"
    assert ex.page_df["run_id"].to_list() == [NESTED]
    assert ex.page_df["failure_modes"].to_list() == ["tool_error"]
    assert "<span title='tool_error'>tool_error</span>" in ex.table.value


def test_a_page_lists_the_failure_modes_of_its_own_runs(vlens):
    """Each run of a page gets its modes (distinct, sorted), runs without one none, and a detection of a
    run on another page changes nothing here (the modes are joined from the page's runs' detections)."""
    clear_failures(vlens)
    add_failure(vlens, NESTED, "tool_error", TOOL, "refund_order failed", {})
    add_failure(vlens, NESTED, "budget_exceeded", None, "over the cap", {})
    add_failure(vlens, NESTED, "tool_error", TOOL, "refund_order failed again", {})
    add_failure(vlens, MANY[3], "budget_exceeded", None, "over the cap", {})
    full = find_runs(vlens, limit=1000)
    modes = dict(zip(full["run_id"].to_list(), full["failure_modes"].to_list(), strict=True))
    assert modes[NESTED] == "budget_exceeded, tool_error" and modes[MANY[3]] == "budget_exceeded"
    assert sum(m is not None for m in modes.values()) == 2
    for offset in range(0, full.height, 7):  # pages of 7: the same modes, in the same order as the full list
        page = find_runs(vlens, limit=7, offset=offset)
        assert page.equals(full.slice(offset, 7))


def test_explorer_cells_are_escaped_text(vlens):
    ex = RunExplorer(vlens, page_size=30)
    row = ex.page_df["run_id"].to_list().index(EVIL)
    html_cells = ex.table.value.split(f"<tr data-al-click='open:{row}'>")[1].split("</tr>")[0]
    assert "<script" not in ex.table.value and "<img" not in ex.table.value
    assert "ord&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html_cells
    assert "&lt;img src=x onerror=&quot;window.__xss = 2&quot;&gt;" in html_cells
    assert IMG in ex.values[1].options  # combobox options are text


def test_trace_view_shows_what_the_classifier_found_at_ingest(vlens):
    found = vlens.sql("SELECT span_id, mode, explanation FROM failures WHERE run_id = ?", [NESTED])
    assert found.height > 0, "the failing refund_order tool is a failure of some mode"
    tv = TraceView(vlens, NESTED)
    rows = trace_layout(vlens, NESTED)
    expected = sorted(rows.filter(rows["span_id"].is_in(found["span_id"].to_list()))["row"].to_list())
    stars = next(tr for tr in tv.figure.data if tr.name == "failure evidence")
    assert sorted(stars.y) == expected
    assert tv.selected_span == rows["span_id"][expected[0]]  # the first evidence span opens first
    for explanation in found["explanation"]:
        assert html.escape(explanation) in tv.header.value


def test_explorer_on_tool_span_evidence_only_names_known_spans(vlens):
    clear_failures(vlens)
    add_failure(vlens, EVIL, "prompt_injection", EVIL_TOOL, f"the tool result says {SCRIPT}", {"span_ids": ["nope"]})
    tv = TraceView(vlens, EVIL)
    assert tv.selected_span == EVIL_TOOL
    assert "the tool result says &lt;script&gt;" in tv.header.value and SCRIPT not in tv.header.value
