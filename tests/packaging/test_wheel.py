"""The wheel holds the whole product: every module, the agents and tables, the dashboard and the Java hasher, and
where a C compiler is at hand the compiled hasher and the compiled engine, which pass the engine's unit tests.

Built with ``pip wheel`` (a non-editable build, as ``pip install .`` makes) and imported from outside the
source tree, so nothing can come from the checkout by accident.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = "v2:9567b657d65c7bb479ecc12c64d60329b26a058e241f2711e661b9ca4a654372"  # tests/vectors/v2.jsonl, first

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, set[str]]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("dqhash-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    site = out / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    return site, names


def expected_files() -> set[str]:
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "dqhash").rglob("*.py") if "__pycache__" not in p.parts}
    files |= {f"dqhash/agents/{p.name}" for p in (ROOT / "agents").glob("*.py")}
    files |= {f"dqhash/tables/{p.name}" for p in (ROOT / "tables").glob("*.py")}
    return files | {"dqhash/ops/dashboard.html", "dqhash/java/DqHash.java"}


def test_the_wheel_holds_every_file_of_the_product(installed):
    _, names = installed
    missing = sorted(f for f in expected_files() if f not in names)
    assert not missing, f"the wheel lacks {missing}"


def test_the_wheel_carries_the_compiled_hasher_where_it_builds(installed, tmp_path):
    from dqhash.core import compiled_hasher

    if not compiled_hasher.AVAILABLE and os.environ.get("DQHASH_REQUIRE_COMPILED") != "1":
        pytest.skip("the compiled hasher does not build here (no C compiler): the wheel is pure Python")
    site, names = installed
    assert any(n.startswith("dqhash/core/_fasthash.") and n.endswith(".so") for n in names), sorted(names)[:5]
    version = subprocess.run([sys.executable, "-m", "dqhash.cli", "--version"], cwd=tmp_path, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(site)})  # fmt: skip
    assert "(hasher: compiled," in version.stdout, version.stdout + version.stderr


def _compiled_engine_files(names: set[str]) -> dict[str, bool]:
    from dqhash.core.compiled_engine import MODULES

    return {m: any(n.startswith(m.replace(".", "/") + ".") and n.endswith(".so") for n in names) for m in MODULES}


def _require_the_compiled_engine(names: set[str]) -> None:
    if not any(_compiled_engine_files(names).values()) and os.environ.get("DQHASH_REQUIRE_COMPILED") != "1":
        pytest.skip("the engine does not compile here (no C compiler): the wheel runs it as Python")


def test_the_wheel_carries_the_compiled_engine_where_it_builds(installed, tmp_path):
    site, names = installed
    _require_the_compiled_engine(names)
    missing = [module for module, present in _compiled_engine_files(names).items() if not present]
    assert not missing, f"the wheel lacks the compiled {missing}"
    assert any(n.startswith("dqhash_engine__mypyc.") for n in names), "the wheel lacks the engine's shared library"
    version = subprocess.run([sys.executable, "-m", "dqhash.cli", "--version"], cwd=tmp_path, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(site)})  # fmt: skip
    assert "; engine: compiled)" in version.stdout, version.stdout + version.stderr


def test_the_compiled_engine_passes_the_unit_tests_of_the_core_and_the_engine(installed, tmp_path):
    """The same tests the source passes, run from outside the checkout against the wheel's modules.
    ``DQHASH_EXPECT_ENGINE`` makes ``test_compiled_engine.py`` fail unless they were the compiled ones."""
    site, names = installed
    _require_the_compiled_engine(names)
    tests = [str(ROOT / "tests" / "unit" / part) for part in ("core", "engine")]
    options = ["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "--import-mode=append", *tests],
        cwd=tmp_path,  # not the checkout: its source would be imported before the wheel's modules
        env={**os.environ, "PYTHONPATH": str(site), "DQHASH_EXPECT_ENGINE": "compiled"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_the_installed_wheel_runs_outside_the_checkout(installed, tmp_path):
    site, _ = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import dqhash, dqhash.app, dqhash.agents.reconciler, dqhash.tables; "
        "from importlib.resources import files; "
        "assert files('dqhash.ops').joinpath('dashboard.html').is_file(); "
        "assert files('dqhash.java').joinpath('DqHash.java').is_file(); "
        "print(dqhash.__file__)"
    )
    where = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(site)), f"dqhash came from {where.stdout.strip()}, not the wheel"
    hashed = subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "hash"],
        input='{"id": 42, "name": "Ada"}\n',
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert hashed.stdout.strip() == GOLDEN, hashed.stderr
