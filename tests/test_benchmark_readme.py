"""The benchmark figures of README.md and docs/results.md are generated from the committed results
(benchmarks/readme.py), never typed; every relative link in README.md and docs/ resolves."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("readme_blocks", ROOT / "benchmarks" / "readme.py")
readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def generated() -> dict[Path, dict[str, str]]:
    return readme.files()


def test_readme_blocks_are_what_the_results_give(generated):
    """Fails when a figure in a generated block is edited by hand or the results change without a rewrite
    (`python benchmarks/readme.py`): the G2 ceiling once read 2.41x in the README against 2.40 in its JSON."""
    for path, blocks in generated.items():
        text = path.read_text()
        assert readme.rewrite(text, blocks, path.name) == text, f"{path.name}: run python benchmarks/readme.py"
    results = (ROOT / "docs" / "results.md").read_text()
    assert "2.40x on G2" in results and "2.41" not in results


def test_a_block_edited_by_hand_is_caught(generated):
    """The check above compares real content: a figure changed inside any block makes the files differ."""
    for path, blocks in generated.items():
        text = path.read_text()
        for name, body in blocks.items():
            assert body and body in text, f"{path.name}: block {name} is empty or missing"
            edited = text.replace(body, body.replace("%", "% (edited)", 1) if "%" in body else body + " (edited)")
            assert edited != text and readme.rewrite(edited, blocks, path.name) == text


def test_a_missing_block_is_an_error():
    with pytest.raises(SystemExit, match="begin: weights"):
        readme.rewrite("no blocks here\n", {"weights": "x"})
    assert readme.rewrite("a\n<!-- begin: w -->\nold\n<!-- end: w -->\n", {"w": "new"}) == \
        "a\n<!-- begin: w -->\nnew\n<!-- end: w -->\n"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    """A moved section or file breaks the README's and the docs' links; this names each broken one."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, fragment = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif fragment and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            if fragment not in {anchor(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{doc.name}: broken links {broken}"
