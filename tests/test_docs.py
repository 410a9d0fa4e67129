"""Every code excerpt in docs/*.md is executed, so the chapters cannot rot."""
import doctest
from pathlib import Path

import pytest

import minigrad

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


@pytest.mark.parametrize("chapter", DOCS, ids=[p.name for p in DOCS])
def test_chapter_examples_run_as_written(chapter):
    minigrad.manual_seed(0)
    result = doctest.testfile(
        str(chapter), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0, f"{chapter.name} has no runnable examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {chapter.name} failed"
