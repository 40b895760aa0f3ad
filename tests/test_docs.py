"""The docs cannot drift from the code: every `Baton.*` name has its row in the error
table, every fix of the local stack has its row in the conformance table, the README
stays short, and every relative link in the README and docs/ lands on a file."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {".venv", ".venv-bench", ".venv-checkov", "node_modules", "target", ".tools", ".local", ".local-soak", ".git"}


def table_first_cells(text):
    """The first cell of every table row (header and separator rows included)."""
    return [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("|") and line.count("|") > 2]


def python_files():
    for path in ROOT.rglob("*.py"):
        if not SKIP.intersection(path.relative_to(ROOT).parts):
            yield path


def test_every_baton_error_name_has_its_row_in_the_error_table():
    names = set(re.findall(r'"(Baton\.[A-Za-z]+)"', (ROOT / "crates/baton/src/error.rs").read_text()))
    assert len(names) >= 13, names
    rows = "\n".join(table_first_cells((ROOT / "docs/errors.md").read_text()))
    missing = sorted(name for name in names if f"`{name}`" not in rows)
    assert not missing, f"docs/errors.md has no row for {missing}"


def test_every_local_stack_fix_has_its_row_in_the_conformance_table():
    fixes = set()
    for path in python_files():
        fixes.update(re.findall(r"^def (fix_\w+)\(", path.read_text(), re.MULTILINE))
    assert len(fixes) >= 25, fixes
    rows = [line for line in (ROOT / "docs/aws-conformance.md").read_text().splitlines() if re.match(r"^\| \d+ \|", line)]
    missing = sorted(fix for fix in fixes if not any(f"`{fix}`" in row for row in rows))
    assert not missing, f"docs/aws-conformance.md has no row naming {missing}"


def test_the_readme_is_short_and_starts_with_the_demo():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    assert any("make demo" in line for line in lines[:30]), "make demo is not on the first screen"


def test_every_relative_link_lands_on_a_file():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench/results").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)]+)\)", doc.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if not (doc.parent / path).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, broken
