"""`dqhash hash` through the installed console script, as a user runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

_BESIDE = Path(sys.executable).parent / "dqhash"
DQHASH = str(_BESIDE) if _BESIDE.exists() else shutil.which("dqhash")
if DQHASH is None:
    pytest.fail("the dqhash console script is not installed (pip install -e '.[test]')", pytrace=False)


def run(stdin, *args, env=None):
    return subprocess.run(
        [DQHASH, "hash", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_one_hash_per_line_and_bad_lines_reported_by_number():
    result = run('{"id": 42, "name": "Ada"}\n{broken\n\n[1]\n{"name": "Ada", "id": 42}\n')
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[0] == lines[3] == "v2:9567b657d65c7bb479ecc12c64d60329b26a058e241f2711e661b9ca4a654372"
    assert lines[1] == lines[2] == ""  # bad lines keep their place; the blank line is skipped
    assert "line 2:" in result.stderr and "line 4:" in result.stderr and "2 bad line(s)" in result.stderr


def test_same_hash_in_another_process_with_another_hash_seed():
    row = '{"s": [3, 1, 2], "m": {"b": 1, "a": 2}, "t": "x"}\n'
    first = run(row, "--types", "s=set<int>", env={"PYTHONHASHSEED": "1"})
    second = run(row, "--types", "s=set<int>", env={"PYTHONHASHSEED": "2"})
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


def test_columns_output_and_field_selection():
    result = run(
        '{"id": 1, "amount": ".71", "ignored": true}\n',
        "--fields",
        "id,amount",
        "--types",
        "amount=decimal",
        "--columns",
    )
    assert result.returncode == 0, result.stderr
    out = orjson.loads(result.stdout)
    assert out["line"] == 1 and out["hash"].startswith("v2:") and set(out["columns"]) == {"id", "amount"}


def test_v1_strategy():
    result = run('{"a": null, "b": "x"}\n', "--strategy", "v1")
    assert result.returncode == 0 and result.stdout.startswith("v1:")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "v9"], "unknown hash strategy"),
        (["--algorithm", "md5"], "unsupported hash algorithm"),
        (["--types", "a=duration"], "unsupported column type"),
        (["--types", "a"], "bad type declaration"),
        (["--fields", "a,a"], "names a column twice"),
    ],
)
def test_bad_configuration_exits_2_at_startup(args, message):
    result = run('{"a": 1}\n', *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stdout == ""


def test_value_not_fitting_declared_type_is_a_bad_line():
    result = run('{"ts": "not a time"}\n{"ts": "2024-01-01T00:00:00Z"}\n', "--types", "ts=timestamp")
    assert result.returncode == 1
    assert "line 1:" in result.stderr and result.stdout.splitlines()[1].startswith("v2:")


def test_module_entry_point_works_too():
    result = subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "hash"], input='{"a": 1}\n', capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.startswith("v2:")
