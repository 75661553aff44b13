"""Docs that cannot rot: the reference pages are generated from the code, every column and command is
documented, the README keeps its two commands, and the site builds with warnings as errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentlens import docs, schema
from agentlens.cli import main as cli_main
from conftest import ROOT

DOCS = ROOT / "docs"
GENERATED = re.compile(r"<!-- (\w+):start -->\n.*?<!-- \1:end -->", re.S)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # NO_MKDOCS_2_WARNING: Material's end-of-life notice, printed on every build (not a build warning)
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.mark.parametrize("page", docs.PAGES, ids=lambda p: p.name)
def test_generated_pages_are_current(page):
    text = _read(page.path)
    assert docs.render(page, text) == text, f"{page.name} is out of date: run `.venv/bin/python -m agentlens.docs`"


def test_check_names_a_drifted_page_and_a_rewrite_fixes_it(tmp_path, monkeypatch, capsys):
    page = docs.Page(tmp_path / "cli.md", {"cli": docs.cli_reference})
    page.path.write_text("# CLI\n\n<!-- cli:start -->\nan old help text\n<!-- cli:end -->\n", encoding="utf-8")
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    monkeypatch.setattr(docs, "PAGES", (page,))
    assert docs.main(["--check"]) == 1
    assert "cli.md" in capsys.readouterr().err
    assert "an old help text" in _read(page.path)  # --check writes nothing
    assert docs.main([]) == 0
    assert "## `agentlens ingest`" in _read(page.path) and docs.main(["--check"]) == 0
    page.path.write_text("# CLI without markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no <!-- cli:start -->"):
        docs.main(["--check"])


def test_every_column_is_documented():
    text = _read(DOCS / "reference" / "schema.md")
    for table, cols in schema.TABLES.items():
        assert f"## `{table}`" in text
        for c in cols:
            assert f"| `{c.name}` | {c.type} |" in text


def test_every_command_is_documented():
    """In the CLI reference (its help), and named in a hand-written page, where a reader finds it."""
    reference = _read(DOCS / "reference" / "cli.md")
    prose = "\n".join(GENERATED.sub("", _read(p)) for p in sorted(DOCS.rglob("*.md")))
    for name, cmd in sorted(cli_main.every_command().items()):
        assert (cmd.help or "").strip(), f"agentlens {name} has no help text"
        assert f"## `agentlens {name}`" in reference
        assert f"agentlens {name}" in prose, f"`agentlens {name}` is named in no page of docs/ but the reference"


def test_readme_names_the_two_commands():
    text = _read(ROOT / "README.md")
    assert "make demo" in text and "make test" in text
    assert "make test" in _read(ROOT / ".ci" / "run")


def test_readme_and_getting_started_show_the_same_demo_output():
    def demo_output(path: Path) -> str:
        blocks = re.findall(r"```\n(ingest summary\n.*?)```", _read(path), re.S)
        assert len(blocks) == 1, f"{path.relative_to(ROOT)}: one abridged `make demo` output"
        return blocks[0]

    assert demo_output(ROOT / "README.md") == demo_output(DOCS / "getting-started.md")


def test_readme_links_point_to_files_that_exist():
    """The site checks its own links; the README is outside it, so its relative links are checked here."""
    targets = re.findall(r"\]\(([^)\s#]+)[^)]*\)", _read(ROOT / "README.md"))
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert any(t.startswith("docs/") for t in local), "the README links into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_site_builds_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    r = _mkdocs_build(ROOT / "mkdocs.yml", site)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    for page in DOCS.rglob("*.md"):
        rel = page.relative_to(DOCS).with_suffix("")
        html = site / ("index.html" if rel.name == "index" else rel / "index.html")
        assert html.is_file(), f"{page.relative_to(ROOT)} was not built"


def test_the_build_fails_on_a_broken_link_an_anchor_or_a_page_left_out(tmp_path):
    """mkdocs.yml's own settings (INHERIT) on a small site with one of each fault: the build must fail
    naming them, or the test above would pass on a site with broken links."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# Home\n\n[gone](missing.md), [here](#no-such-heading), [there](other.md#nor-here)\n", encoding="utf-8")
    (tmp_path / "docs" / "other.md").write_text("# Other\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: docs\nnav:\n  - index.md\n", encoding="utf-8")
    r = _mkdocs_build(config, tmp_path / "site")
    assert r.returncode != 0
    warnings = [line for line in r.stderr.splitlines() if line.startswith("WARNING")]
    for fault in ("'missing.md'", "'#no-such-heading'", "'#nor-here'", "not included in the \"nav\""):
        assert any(fault in w for w in warnings), (fault, r.stderr)
