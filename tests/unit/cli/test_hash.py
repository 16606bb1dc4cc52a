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


def test_one_output_line_per_input_line_and_bad_lines_reported_by_number():
    result = run('{"id": 42, "name": "Ada"}\n{broken\n\n[1]\n{"name": "Ada", "id": 42}\n')
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert len(lines) == 5  # a blank line is a bad line with its own empty output line, so outputs stay aligned
    assert lines[0] == lines[4] == "v2:9567b657d65c7bb479ecc12c64d60329b26a058e241f2711e661b9ca4a654372"
    assert lines[1] == lines[2] == lines[3] == ""
    assert "line 2:" in result.stderr and "line 3: blank line" in result.stderr and "line 4:" in result.stderr
    assert "3 bad line(s)" in result.stderr


def test_a_value_that_cannot_be_rendered_is_one_bad_line_not_a_crash():
    rows = '{"d": -800000}\n{"d": 1}\n{"d": 99999999}\n{"d": 2}\n'
    result = run(rows, "--strategy", "v1", "--types", "d=date")
    lines = result.stdout.splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lines[0] == lines[2] == "" and lines[1].startswith("v1:") and lines[3].startswith("v1:")
    assert "line 1: v1 writes years 0001-9999 only" in result.stderr and "line 3: v1 writes" in result.stderr


def test_invalid_utf8_and_refused_json_are_errors_of_their_own_line():
    rows = b'{"a": "\xff"}\n{"a": NaN}\n{"a": 1, "a": 2}\n{"a": 12345678901234567890123}\n'
    result = subprocess.run([DQHASH, "hash", "--columns"], input=rows, capture_output=True, timeout=60)
    lines = result.stdout.decode().splitlines()
    stderr = result.stderr.decode()
    assert lines[:3] == ["", "", ""] and orjson.loads(lines[3])["line"] == 4
    assert "line 1: not valid UTF-8" in stderr and "line 2: NaN is not JSON" in stderr
    assert "line 3: duplicate key 'a'" in stderr


def test_big_integers_keep_every_digit():
    result = run('{"n": 12345678901234567890123}\n{"n": 12345678901234567890124}\n', "--types", "n=varint")
    first, second = result.stdout.splitlines()
    assert result.returncode == 0 and first != second


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
        (["--types", "a=set<int"], "unclosed '<'"),
        (["--types", "a=list<int>>"], "unbalanced '>'"),
        (["--types", "a=udt<int>"], "udt takes no type parameters"),
        (["--types", "a=int,a=text"], "declared twice"),
        (["--types", "a=map<int>"], "map takes 2 type parameter"),
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


def test_a_misspelled_column_in_fields_or_types_is_refused_before_any_line_is_hashed():
    rows = '{"id": 1, "amount": "2.50"}\n{"id": 2, "amount": "3"}\n'
    result = run(rows, "--fields", "id,amout", "--types", "amount=decimal")
    assert result.returncode == 2 and result.stdout == ""
    assert "--fields names 'amout'" in result.stderr and "did you mean 'amount'?" in result.stderr
    typo = run(rows, "--types", "amout=decimal")
    assert typo.returncode == 2 and "--types names 'amout'" in typo.stderr
    lenient = run(rows, "--fields", "id,amout", "--allow-absent")
    assert lenient.returncode == 0 and len(lenient.stdout.splitlines()) == 2


def test_every_nesting_depth_the_spec_allows_is_hashed_and_the_lines_after_a_too_deep_one_too():
    deep = '{"a": ' + "[" * 511 + "1" + "]" * 511 + "}"
    too_deep = '{"a": ' + "[" * 512 + "1" + "]" * 512 + "}"
    result = run(f'{deep}\n{too_deep}\n{{"a": 1}}\n', "--strategy", "v2")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("v2:") and lines[1] == "" and lines[2].startswith("v2:")
    assert "line 2: nested deeper than 512 levels" in result.stderr and "Traceback" not in result.stderr


def test_v1_text_is_bounded_rather_than_doubling_with_each_nesting_level():
    nested = '{"a": ' + "[" * 40 + '"x"' + "]" * 40 + "}"
    result = run(f'{nested}\n{{"a": 1}}\n', "--strategy", "v1")
    lines = result.stdout.splitlines()
    assert lines[0] == "" and lines[1].startswith("v1:") and "hash such rows with v2" in result.stderr
