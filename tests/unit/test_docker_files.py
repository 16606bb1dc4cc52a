"""No Docker engine here: check the Dockerfile structurally against the project."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def test_copies_exist_and_cover_the_package_dirs():
    sources = re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE, flags=re.M)
    copied = {part for line in sources for part in line.split()}
    assert {"pyproject.toml", "dqhash", "agents", "tables"} <= copied
    for path in copied:
        assert (ROOT / path).exists(), path


def test_runs_the_faust_worker_on_the_dqhash_app_as_non_root():
    assert 'ENTRYPOINT ["faust", "-A", "dqhash.app", "worker"]' in DOCKERFILE
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, flags=re.M)
    assert "HEALTHCHECK" in DOCKERFILE


def test_every_dqhash_variable_it_sets_is_a_real_setting():
    from dqhash.settings import VARIABLES
    names = {v.name for v in VARIABLES}
    used = set(re.findall(r"\b(DQHASH_[A-Z_]+)", DOCKERFILE + (ROOT / "docker" / "README.md").read_text()))
    assert used and used <= names, used - names
