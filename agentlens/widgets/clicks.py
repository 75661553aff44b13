"""Clicks from plain notebook outputs back to Python, without a widget that carries plotly.js.

A plotly `FigureWidget` is an anywidget whose ES module is the whole of plotly.js (about 5 MB), and a
notebook saved with its widget state (papermill, "save widget state") stores that module once per
figure. So the widgets show their figures as ordinary plotly outputs (`application/vnd.plotly.v1+json`,
drawn by JupyterLab's plotly extension, the same as a figure at the end of a cell) inside an
ipywidgets `Output`, and a small anywidget, `ClickBridge` (about 1.5 KB of JavaScript), listens
beside them:

- to `plotly_click` on the plots drawn inside its scope, sending the clicked point's `customdata`
  and its trace's name;
- to clicks on elements with a `data-al-click` attribute (the run explorer's rows and headers, in
  one escaped HTML widget), sending the attribute's value.

A scope is the box that holds the bridge (`PlotBox`, `ClickableHTML`): the bridge finds it with
`closest()`, so a click inside a nested widget of another scope is not taken for its own. Each
handler gets what the browser sent, which it checks (a row number in range, a known column) before
acting on it. `click()` / `action()` send the same messages from Python, which is how the tests
drive the widgets without a browser; tests/test_browser.py clicks them in JupyterLab.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as w
import plotly.graph_objects as go
import plotly.io as pio
import traitlets

_ESM = r"""
function render({ model, el }) {
  const scope = model.get("scope");
  let root = null, observer = null, alive = true;
  const own = (node) => node && node.closest("." + scope) === root;
  const onAction = (event) => {
    const target = event.target.closest("[data-al-click]");
    if (!target || !own(target)) return;
    event.preventDefault();
    model.send({ event: "action", value: String(target.getAttribute("data-al-click")) });
  };
  const hook = () => {
    for (const gd of root.querySelectorAll(".js-plotly-plot")) {
      if (gd.__alClicks || typeof gd.on !== "function" || !own(gd)) continue;
      gd.__alClicks = true;
      gd.on("plotly_click", (data) => {
        const p = data && data.points && data.points[0];
        if (!p) return;
        const custom = p.customdata === undefined ? null : p.customdata;
        model.send({ event: "click", customdata: custom, curve: (p.data && p.data.name) || null });
      });
    }
  };
  const start = () => {
    if (!alive) return;
    root = el.closest("." + scope);
    if (!root) { setTimeout(start, 100); return; }
    root.addEventListener("click", onAction);
    hook();
    observer = new MutationObserver(hook);
    observer.observe(root, { childList: true, subtree: true });
  };
  el.style.display = "none";
  start();
  return () => {
    alive = false;
    if (observer) observer.disconnect();
    if (root) root.removeEventListener("click", onAction);
  };
}
export default { render };
"""


class ClickBridge(anywidget.AnyWidget):
    """Sends clicks inside the element of class `scope` to Python (see the module)."""

    _esm = _ESM
    scope = traitlets.Unicode().tag(sync=True)


PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_output(fig: go.Figure) -> dict[str, Any]:
    """A plotly figure as one notebook output (plotly's own `plotly_mimetype` bundle, plain JSON)."""
    data = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    return {"output_type": "display_data", "data": data, "metadata": {}}


def patched_output(drawn: dict[str, Any], fig: go.Figure, trace: int, yaxis_range: Any) -> dict[str, Any]:
    """`drawn` (a `figure_output` of `fig`) after only `fig.data[trace]` and the y axis range changed:
    serialises that one trace instead of the whole figure (a 2,000-span waterfall: ~5 ms, not ~50)."""
    spec = drawn["data"][PLOTLY_MIME]
    data = list(spec["data"])
    one = go.Figure([fig.data[trace]]).to_dict()  # encoded as plotly encodes a whole figure
    data[trace] = json.loads(pio.to_json(one, validate=False, remove_uids=False))["data"][0]
    layout = {**spec["layout"], "yaxis": {**spec["layout"].get("yaxis", {}), "range": list(yaxis_range)}}
    return {**drawn, "data": {**drawn["data"], PLOTLY_MIME: {**spec, "data": data, "layout": layout}}}


class _Scoped(w.VBox):
    def __init__(self, children: list[w.Widget], clickable: bool, **kwargs: Any):
        self.scope = f"al-clicks-{uuid.uuid4().hex[:12]}"
        self.bridge = ClickBridge(scope=self.scope) if clickable else None
        if self.bridge is not None:
            self.bridge.on_msg(self._on_msg)
            children = [*children, self.bridge]
        super().__init__(children, **kwargs)
        self.add_class(self.scope)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("event") == "click":
            self.click(content.get("customdata"), content.get("curve"))
        elif content.get("event") == "action" and isinstance(content.get("value"), str):
            self.action(content["value"])

    def click(self, customdata: Any, curve: str | None = None) -> None:
        pass

    def action(self, value: str) -> None:
        pass


class PlotBox(_Scoped):
    """A plotly figure as a plain plotly output in an `Output` widget; `show(fig)` replaces it.
    With `on_click(handler)`, a click on a point calls `handler(customdata, trace_name)`."""

    def __init__(self, figure: go.Figure | None = None, clickable: bool = True, **kwargs: Any):
        self.output = w.Output(layout=w.Layout(width="100%"))
        self.figure: go.Figure | None = None
        self._handlers: list[Callable[[Any, str | None], None]] = []
        super().__init__([self.output], clickable, layout=w.Layout(width="100%"), **kwargs)
        if figure is not None:
            self.show(figure)

    def show(self, fig: go.Figure, drawn: dict[str, Any] | None = None) -> None:
        """Draw `fig` (`drawn`: its output when already made, see `patched_output`)."""
        self.figure = fig
        self.output.outputs = (drawn or figure_output(fig),)

    def on_click(self, handler: Callable[[Any, str | None], None]) -> None:
        self._handlers.append(handler)

    def click(self, customdata: Any, curve: str | None = None) -> None:
        """A click on a point whose customdata is `customdata` (what the browser sends)."""
        for handler in self._handlers:
            handler(customdata, curve)


class ClickableHTML(_Scoped):
    """One HTML widget whose elements with `data-al-click="VALUE"` call `on_action` handlers with
    VALUE when clicked. The HTML must be escaped by its maker (trace content is untrusted)."""

    def __init__(self, value: str = "", **kwargs: Any):
        self.html = w.HTML(value, layout=w.Layout(width="100%", overflow="auto"))
        self._handlers: list[Callable[[str], None]] = []
        super().__init__([self.html], True, layout=w.Layout(width="100%"), **kwargs)

    @property
    def value(self) -> str:
        return self.html.value

    @value.setter
    def value(self, v: str) -> None:
        self.html.value = v

    def on_action(self, handler: Callable[[str], None]) -> None:
        self._handlers.append(handler)

    def action(self, value: str) -> None:
        """A click on an element with `data-al-click=value` (what the browser sends)."""
        for handler in self._handlers:
            handler(value)
