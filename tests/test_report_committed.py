"""Every ratio in every committed report (reports/*/report.md) follows from the numbers printed beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO
from helpers_report import ratio_problems

COMMITTED = sorted((REPO / "reports").glob("*/report.md"))


def test_there_are_committed_reports() -> None:
    assert COMMITTED, "no reports/*/report.md"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_every_ratio_follows_from_its_own_medians(path: Path) -> None:
    problems, checked = ratio_problems(path.read_text(encoding="utf-8"))
    assert checked > 0, f"{path}: no ratio found to check"
    assert problems == [], "\n".join(problems)
