"""Where the repository's files are, for tests at any depth of tests/."""

from pathlib import Path

#: the repository's root (README.md, docs/, docker/, pyproject.toml)
ROOT = Path(__file__).resolve().parents[1]
#: the shared hash test vectors (tests/vectors/build.py writes them)
VECTORS = ROOT / "tests" / "vectors"
