"""No document, docstring or test points at a file (or a test) that does not exist."""

from __future__ import annotations

import re

from tests.paths import ROOT

#: a repository path with a file extension, optionally followed by ``::test_name``
PATH = re.compile(
    r"(?<![\w/.-])((?:tests|dqhash|docs|docker|agents|tables|\.ci)/[\w./-]*\.(?:py|md|cql|json|html|ya?ml|jsonl|java|toml|sh)(?![\w]))(?:::(\w+))?"
)
#: where references are written: the docs, and every text file of the product and its tests
SOURCES = [
    *ROOT.glob("*.md"),
    *ROOT.glob("docs/*.md"),
    *ROOT.glob("docker/**/*.md"),
    *ROOT.glob("dqhash/**/*.py"),
    *ROOT.glob("agents/*.py"),
    *ROOT.glob("tables/*.py"),
    *ROOT.glob("tests/**/*.py"),
]


def references() -> list[tuple[str, str, str | None]]:
    found = []
    for source in SOURCES:
        if "dqhash/agents" in str(source.relative_to(ROOT)) or "dqhash/tables" in str(source.relative_to(ROOT)):
            continue  # links to agents/ and tables/, read there
        for match in PATH.finditer(source.read_text()):
            found.append((str(source.relative_to(ROOT)), match.group(1).rstrip("."), match.group(2)))
    return found


def test_references_are_found_at_all():
    assert len(references()) > 50, "the pattern finds the references the docs make"


def test_every_referenced_file_and_test_exists():
    broken = []
    for source, path, test in references():
        target = ROOT / path
        if not target.exists():
            broken.append(f"{source}: {path}")
        elif test and f"def {test}" not in target.read_text():
            broken.append(f"{source}: {path}::{test}")
    assert broken == [], "references to files or tests that do not exist:\n" + "\n".join(broken)
