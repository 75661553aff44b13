"""The package is in floors, each importing only from the floors above it (README, Layout): read from the
source with `ast`, every import counted (module level, inside functions, under TYPE_CHECKING). The library
below the presentation returns data: no terminal, no CLI hints, no network delivery."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

PKG = ROOT / "agentlens"

# Bottom to top: a module may import from its own floor and the floors before it, never after. `server`
# serves a database this process holds to the others (its write operations come from the floors below). The sample
# generator imports nothing of agentlens (its traces are bytes, read back by the adapters like any file):
# it sits beside the vocabulary, so that the CLI's `samples` command and the demo can use it.
FLOORS = ("core", "samples", "schema", "adapters", "scale", "store", "pricing", "failures", "metrics", "explore", "ingest",
          "sources", "server", "api", "present", "widgets", "cli")
# Not floors: the package's lazy front door, and the README generator (it reads the CLI's help).
OUTSIDE = {"agentlens", "agentlens.docs"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def floor(module: str) -> int | None:
    parts = module.split(".")
    if module in OUTSIDE or len(parts) < 2:
        return None
    return FLOORS.index(parts[1])


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every agentlens import of the file."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "agentlens"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "agentlens":
                continue
            for a in node.names:  # `from . import rollups` imports a module
                sub = f"{target}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub) else target))
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PKG / rel).with_suffix(".py").exists() or (PKG / rel / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        g[module_name(path)] = {t for _, t in imports(path)} - {module_name(path)}
    return g


def test_no_module_imports_a_lower_floor():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        mine = floor(module_name(path))
        if mine is None:
            continue
        for line, target in imports(path):
            theirs = floor(target)
            if theirs is not None and theirs > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {FLOORS[mine]} imports {target} ({FLOORS[theirs]})")
    assert not bad, "\n".join(bad)


def test_core_imports_nothing_else_of_agentlens():
    for path in sorted((PKG / "core").glob("*.py")):
        assert all(t.startswith("agentlens.core") for _, t in imports(path)), path


def test_no_import_cycle():
    g = graph()
    g = {m: {t for t in ts if t in g} for m, ts in g.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(g[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join([*stack[stack.index(t):], t]))
            elif state.get(t) is None:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


# Below the presentation: the analysis returns data and leaves words, terminals and delivery to present/.
# (schema.py's column docs, which name commands, are the README's documentation, not output.)
ANALYSIS = ("core", "store", "pricing", "failures", "metrics", "explore")
CLI_HINT = re.compile(r"\bagentlens (signals|costs|rollup|reprice|classify|failures|alerts|ingest|report|demo|"
                      r"export-evals|collect|lab|show)\b")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_the_library_below_present_writes_no_terminal_prose_and_delivers_nothing():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        mod = module_name(path)
        if floor(mod) is None or FLOORS[floor(mod)] not in ANALYSIS:  # type: ignore[index]
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and CLI_HINT.search(node.value):
                bad.append(f"{where}: a CLI hint in library text: {node.value[:60]!r}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for n in names:
                    if n.split(".")[0] in ("click", "urllib", "http", "requests", "smtplib"):
                        bad.append(f"{where}: imports {n}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("print", "sys.stdout.write", "sys.stderr.write"):
                bad.append(f"{where}: writes to the terminal")
    assert not bad, "\n".join(bad)


def test_the_documented_layout_lists_the_floors_in_order():
    """docs/development.md draws the layout: every floor, in the order this test enforces."""
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    block = text.split("<!-- floors:start -->", 1)[1].split("<!-- floors:end -->", 1)[0]
    names = re.findall(r"^  (\w+)(?:/|\.py)", block, flags=re.M)
    assert [n for n in names if n in FLOORS] == list(FLOORS), names
