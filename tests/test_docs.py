"""Issue 17 item 6: the README is a front door of at most 200 lines, the rest of the
documentation lives in docs/ by task, and every relative link points somewhere."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
MAX_README_LINES = 200
# The pages the README sends readers to, one per task.
TASK_PAGES = (
    "inference.md",
    "training.md",
    "export.md",
    "mask_rcnn.md",
    "troubleshooting.md",
    "architecture.md",
    "benchmarks.md",
)
SETUP = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"'
TEST_COMMAND = "python -m pytest -q"  # .ci/run runs the README's test command

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files() -> list[Path]:
    """The README, every page under docs/ and the READMEs of weights/ and data/."""
    pages = [README, REPO / "weights" / "README.md", REPO / "data" / "README.md"]
    return pages + sorted((REPO / "docs").rglob("*.md"))


def prose_lines(text: str) -> list[str]:
    """The lines of a markdown text outside fenced code blocks."""
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            lines.append(line)
    return lines


def relative_links(path: Path) -> list[str]:
    """The link targets of a page that are neither web addresses nor mail."""
    found = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                found.append(target)
    return found


def slug(heading: str) -> str:
    """The anchor a markdown renderer (GitHub's rule) gives a heading's text."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of the headings of a page."""
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            out.add(slug(match.group(1)))
    return out


def section(text: str, title: str) -> str:
    """The body of the level-2 section ``## title`` of a markdown text."""
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {title}' section"
    return match.group(1)


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_readme_keeps_the_setup_and_test_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert SETUP in section(text, "Set up").splitlines()
    assert TEST_COMMAND in section(text, "Test").splitlines()


def test_readme_links_every_task_page_and_each_exists() -> None:
    links = set(relative_links(README))
    for page in TASK_PAGES:
        assert (REPO / "docs" / page).is_file(), f"docs/{page} is missing"
        assert f"docs/{page}" in links, f"README.md does not link docs/{page}"
    reports = sorted((REPO / "docs" / "reports").glob("*.md"))
    assert reports, "docs/reports/ holds no report"
    assert "docs/reports/" in links


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_paths(page: Path) -> None:
    missing = []
    for target in relative_links(page):
        path = target.split("#", 1)[0]
        resolved = page if not path else (page.parent / path).resolve()
        if not resolved.exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to missing paths: {missing}"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_link_anchors_name_a_heading(page: Path) -> None:
    bad = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = page if not path else (page.parent / path).resolve()
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            bad.append(target)
    assert not bad, f"{page.relative_to(REPO)} links to missing headings: {bad}"


def test_the_slug_rule() -> None:
    assert slug("Precision and GPU options") == "precision-and-gpu-options"
    assert slug("`--set`: any config field for one run") == "--set-any-config-field-for-one-run"
    assert slug("Output safety, stops and exit status") == "output-safety-stops-and-exit-status"


def test_documented_python_modules_exist() -> None:
    """Every ``python -m MODULE`` in the documentation can be run."""
    missing = set()
    for page in markdown_files():
        for module in re.findall(r"python3? -m ([\w.]+)", page.read_text(encoding="utf-8")):
            if module in ("venv", "pytest"):
                continue
            if importlib.util.find_spec(module) is None:
                missing.add(f"{page.relative_to(REPO)}: {module}")
    assert not missing, "\n".join(sorted(missing))


def test_documented_commands_and_tools_exist() -> None:
    """Every ``yolact COMMAND`` is a subcommand and every ``python tools/X.py`` a file."""
    from yolact.cli.main import SUBCOMMANDS

    commands = re.compile(r"(?<!from )(?<![\w./-])yolact ([a-z]+)\b")
    tools = re.compile(r"python3? (tools/[a-z_]+\.py)")
    bad, seen = set(), set()
    for page in markdown_files():
        text = page.read_text(encoding="utf-8")
        for name in commands.findall(text):
            seen.add(name)
            if name not in SUBCOMMANDS:
                bad.add(f"{page.relative_to(REPO)}: yolact {name}")
        for tool in tools.findall(text):
            if not (REPO / tool).is_file():
                bad.add(f"{page.relative_to(REPO)}: {tool}")
    assert not bad, "\n".join(sorted(bad))
    assert {"eval", "train", "export", "benchmark"} <= seen  # the check sees the commands
