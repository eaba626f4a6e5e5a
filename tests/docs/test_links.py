"""Every relative link of the README and the docs points to a file that exists, and every
`#anchor` to a heading there (GitHub's slugs), so a page that moves or a heading that is renamed
is caught here rather than by a reader."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.liveserver import ROOT

PAGES = [
    ROOT / "README.md",
    ROOT / "tools" / "python-client" / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
]
FENCED = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
CODE = re.compile(rf"{FENCED.pattern}|`[^`\n]*`", flags=re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
EXTERNAL = ("http://", "https://", "mailto:")


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lowercased, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCED.sub("", page.read_text()), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(CODE.sub("", page.read_text())):
        if target.startswith(EXTERNAL):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    return broken


def test_every_relative_link_of_the_readme_and_the_docs_points_to_a_file_and_heading_that_exist() -> None:
    assert len(PAGES) > 10
    broken = {str(page.relative_to(ROOT)): links for page in PAGES if (links := broken_links(page))}

    assert broken == {}


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading: with `code`\n\n## A heading: with code\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#a-heading-with-code-1) [gone](missing.md) [wrong](there.md#nowhere) "
        "`[in code](missing.md)` [web](https://example.com/x)\n"
    )

    assert broken_links(page) == ["missing.md: no such file", "there.md#nowhere: no such heading"]
