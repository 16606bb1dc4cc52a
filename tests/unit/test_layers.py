"""The layering rule, as tests: the import contracts hold, every module imports on its own, and the
reference hasher runs without cassandra-driver."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dqhash

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_ROW = '{"id":42,"name":"Ada"}\n'
GOLDEN_HASH = "v2:9567b657d65c7bb479ecc12c64d60329b26a058e241f2711e661b9ca4a654372"  # tests/vectors/v2.jsonl


def all_modules() -> list[str]:
    """Every module of the installed package, dqhash.agents and dqhash.tables included (discovered, not listed)."""
    return sorted({"dqhash", *(m.name for m in pkgutil.walk_packages(dqhash.__path__, "dqhash."))})


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: layers one way; core and engine framework-free."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_module_imports_on_its_own_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """No cycle and no import-time dependence on another module having been imported first."""
    modules = all_modules()
    assert {"dqhash.agents.reconciler", "dqhash.tables", "dqhash.engine.reconciler", "dqhash.tools.bench.floor"} <= set(
        modules
    )
    env = {**os.environ, "DQHASH_DATA_DIR": str(tmp_path)}

    def imports(name: str) -> tuple[str, str]:
        result = subprocess.run(
            [sys.executable, "-c", f"import {name}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        return name, "" if result.returncode == 0 else result.stderr.strip().splitlines()[-1]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failed = {name: error for name, error in pool.map(imports, modules) if error}
    assert failed == {}


BLOCK_CASSANDRA = """
import sys
class NoCassandra:
    def find_spec(self, name, path=None, target=None):
        if name == "cassandra" or name.startswith("cassandra."):
            raise ImportError("cassandra-driver is not installed (blocked by the test)")
sys.meta_path.insert(0, NoCassandra())
from dqhash.cli import main
sys.exit(main(["hash"]))
"""


def test_the_reference_hasher_runs_without_cassandra_driver() -> None:
    """``dqhash hash`` with cassandra-driver made unimportable (the wheel test also runs it with it uninstalled)."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_CASSANDRA], input=GOLDEN_ROW, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == GOLDEN_HASH


def test_the_block_really_blocks_cassandra() -> None:
    """The check above can fail: code that needs the driver does fail under the same block."""
    code = BLOCK_CASSANDRA.replace(
        'from dqhash.cli import main\nsys.exit(main(["hash"]))', "import dqhash.cloud.cassandra"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "cassandra-driver is not installed" in result.stderr
