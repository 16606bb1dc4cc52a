"""The compiled engine's declaration (``core.compiled_engine``), and which engine a test run exercises.

The whole suite runs the source (the editable install). ``tests/packaging/test_wheel.py`` runs this directory and
``tests/unit/engine`` again against a wheel's compiled modules, with ``DQHASH_EXPECT_ENGINE=compiled``: the
first test below then proves that run really exercised them.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import pytest

from dqhash.core import compiled_engine

ROOT = Path(__file__).resolve().parents[3]


def test_the_run_exercises_the_engine_it_expects():
    expected = os.environ.get("DQHASH_EXPECT_ENGINE", "pure Python")  # the editable install runs the source
    assert compiled_engine.describe() == expected, compiled_engine.compiled_modules()


def test_every_listed_module_exists_once_in_the_strictly_typed_layers():
    modules = compiled_engine.MODULES
    assert len(set(modules)) == len(modules)
    for name in modules:
        assert importlib.util.find_spec(name) is not None, name
        assert name.rsplit(".", 1)[0] in {"dqhash.core", "dqhash.engine"}, f"{name} is not checked by mypy --strict"


def test_no_listed_module_defines_a_coroutine_or_a_named_tuple_built_past_its_constructor():
    """mypyc runs coroutines its own way, and compiles a NamedTuple into a class ``core.tuples.build`` cannot
    fill: such definitions stay in modules that run as Python."""
    sources = "\n".join(p.read_text() for p in (ROOT / "dqhash").rglob("*.py"))
    for name in compiled_engine.MODULES:
        tree = ast.parse((ROOT / (name.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            assert not isinstance(node, ast.AsyncFunctionDef), f"{name}: async def {node.name}"
            if isinstance(node, ast.ClassDef) and "NamedTuple" in {ast.unparse(base) for base in node.bases}:
                assert f"build({node.name}," not in sources, f"{name}: {node.name} is built past its constructor"


@pytest.mark.parametrize(
    ("path", "extension"),
    [("/x/dqhash/engine/reconciler.cpython-311-x86_64-linux-gnu.so", True), ("/x/dqhash/engine/reconciler.py", False)],
)
def test_an_extension_module_is_told_from_its_source(path, extension):
    assert compiled_engine._is_extension(path) is extension
