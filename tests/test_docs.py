"""The course in docs/ cannot rot: every code excerpt runs, every link and linked name exists.

- Every `>>>` example in docs/*.md is executed with doctest (each chapter must have some).
- Every relative link in docs/*.md and README.md points to an existing file.
- A link whose text is a code name, like [`conv2d_reference`](../minigrad/ops/conv.py),
  names something that the linked file really contains.
- Every figure a chapter shows exists, is small, and has a script in docs/figures/ that writes it.
"""
import doctest
import re
from pathlib import Path

import pytest

import minigrad

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CHAPTERS = sorted(DOCS.glob("[0-9][0-9]_*.md"))
MARKDOWN = sorted(DOCS.glob("*.md")) + [REPO / "README.md"]
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")          # [text](target) and ![alt](image)
CODE_NAME = re.compile(r"^`([A-Za-z_][\w.]*)(\(\))?`$")         # `name`, `Class.method`, `name()`


def relative_links(path):
    """(is_image, text, target path, anchor) for every link in `path` that is not a URL."""
    links = []
    for is_image, text, target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):                     # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        links.append((bool(is_image), text, (path.parent / file_part).resolve() if file_part else path, anchor))
    return links


def test_there_are_twelve_chapters_in_order():
    assert [p.name[:2] for p in CHAPTERS] == [f"{k:02d}" for k in range(1, 13)]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_examples_run_as_written(chapter):
    minigrad.manual_seed(0)
    result = doctest.testfile(
        str(chapter), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0, f"{chapter.name} has no runnable examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {chapter.name} failed"


@pytest.mark.parametrize("page", MARKDOWN, ids=[p.name if p.parent == DOCS else "README.md (root)" for p in MARKDOWN])
def test_every_relative_link_points_to_an_existing_file(page):
    missing = [f"{text!r} -> {target}" for _, text, target, _ in relative_links(page) if not target.exists()]
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", MARKDOWN, ids=[p.name if p.parent == DOCS else "README.md (root)" for p in MARKDOWN])
def test_every_linked_code_name_is_in_the_linked_file(page):
    wrong = []
    for _, text, target, _ in relative_links(page):
        match = CODE_NAME.match(text.strip())
        if not match or not target.is_file() or target.suffix not in (".py", ".cu", ".cuh"):
            continue
        if match.group(1) in (target.name, target.stem):      # [`sgd.py`](../minigrad/optim/sgd.py)
            continue
        name = match.group(1).split(".")[-1]                  # Function.__call__ -> __call__
        if not re.search(rf"\b{re.escape(name)}\b", target.read_text(encoding="utf-8")):
            wrong.append(f"`{match.group(1)}` is not in {target.relative_to(REPO)}")
    assert not wrong, f"{page.name}: {wrong}"


def test_every_chapter_is_in_the_table_of_contents_and_the_readme_course_section():
    contents = (DOCS / "README.md").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    course = readme.split("## Course", 1)[1].split("\n## ", 1)[0] if "## Course" in readme else ""
    for chapter in CHAPTERS:
        assert f"({chapter.name})" in contents, f"docs/README.md does not link {chapter.name}"
        assert f"(docs/{chapter.name})" in course, f"README.md's Course section does not link {chapter.name}"
    positions = [course.index(f"(docs/{chapter.name})") for chapter in CHAPTERS]
    assert positions == sorted(positions), "README.md's Course section lists the chapters out of order"


def test_every_figure_shown_exists_is_small_and_has_a_script():
    scripts = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "figures").glob("*.py"))
    shown = {target for page in CHAPTERS for is_image, _, target, _ in relative_links(page) if is_image}
    assert shown, "no chapter shows a figure"
    for image in shown:
        assert image.is_file(), f"missing figure {image}"
        assert image.stat().st_size < 200_000, f"{image.name} is {image.stat().st_size} bytes (keep < 200 KB)"
        assert f'"{image.name}"' in scripts, f"no script in docs/figures/ writes {image.name}"


def test_make_all_runs_every_figure_script():
    make_all = (DOCS / "figures" / "make_all.py").read_text(encoding="utf-8")
    for script in (DOCS / "figures").glob("*.py"):
        if script.name not in ("make_all.py", "common.py"):
            assert f'"{script.name}"' in make_all, f"make_all.py does not run {script.name}"
