"""The README is a front door: short, and every relative link in it and in docs/*.md leads somewhere.

A link is relative when it names no scheme (``https:``, ``mailto:``, ...). It must resolve, from the folder
of the file that holds it, to a file or folder inside the repository; an anchor (``#...``) must name a heading
of the target markdown file, slugged as GitHub slugs headings. Links inside fenced code blocks and inline
code spans are not links and are not checked.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: the README's size limit in characters (issue 18: a newcomer reads it in five minutes)
README_MAX_CHARS = 12_000

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def unfenced_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines of markdown ``text`` outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of markdown file ``path`` (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in unfenced_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.add(f"{base}-{seen[base]}" if seen[base] else base)
            seen[base] += 1
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per relative link of markdown file ``path`` that does not resolve to a file or folder
    inside ``root`` (empty when all do)."""
    problems = []
    for number, line in unfenced_lines(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(_CODE_SPAN.sub("", line)):
            if _SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(root)}:{number}: ({target})"
            if not resolved.is_relative_to(root):
                problems.append(f"{where}: outside the repository")
            elif not resolved.exists():
                problems.append(f"{where}: no such file or folder")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.name}")
    return problems


def markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_at_most_12k_characters():
    size = len(README.read_text(encoding="utf-8"))
    assert size <= README_MAX_CHARS, f"README.md has {size} characters; the limit is {README_MAX_CHARS}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## A `code` heading: here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-code-heading-here) [file](missing.md) [anchor](other.md#nowhere)\n"
        "[web](https://example.org/x) `[not a link](missing.md)` [self](#top) [out](../page.md)\n"
        "```\n[in a fence](missing.md)\n```\n# Top\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 3, problems
    assert "(missing.md): no such file" in problems[0]
    assert "#nowhere" in problems[1]
    assert "(../page.md): outside the repository" in problems[2]
