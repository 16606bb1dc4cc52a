"""The fence around framework internals (dqhash/internals/symbols.py).

Each private symbol dqhash relies on exists with the expected shape in the installed versions, and no
module outside ``dqhash.internals`` touches one: an upgrade that changes one fails here, in one place.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from dqhash.internals.symbols import COPIES, SYMBOLS, Symbol
from tests.paths import ROOT
from tests.unit.internals.test_recovery import applies_what_fausts_loop_applies

FENCE = ROOT / "dqhash" / "internals"
#: public names that merely start with an underscore: NamedTuple API, enum, os._exit
PUBLIC_UNDERSCORED = {"_replace", "_fields", "_field_defaults", "_asdict", "_make", "_value_", "_exit"}


def _owner(symbol: Symbol) -> type:
    module, _, name = symbol.owner.partition(":")
    return getattr(importlib.import_module(module), name)


def _sets_attribute(cls: type, name: str) -> bool:
    """True if ``cls`` or a base class assigns ``self.<name>`` somewhere in its source."""
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if any(
            isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.ctx, ast.Store)
            for node in ast.walk(ast.parse(textwrap.dedent(source)))
        ):
            return True
    return False


@pytest.mark.parametrize("symbol", SYMBOLS, ids=lambda s: f"{s.owner}.{s.name}")
def test_each_private_symbol_exists_with_the_expected_shape(symbol: Symbol) -> None:
    cls = _owner(symbol)
    if symbol.kind == "task":  # a mode service task: its function is what the service runs
        from mode.services import ServiceTask

        task = getattr(cls, symbol.name, None)
        assert isinstance(task, ServiceTask), (
            f"{symbol.owner}.{symbol.name} is no longer a service task: {symbol.breaks}"
        )
        params = tuple(inspect.signature(task.fun).parameters)
        assert params == symbol.params, f"{symbol.owner}.{symbol.name} now takes {params}: {symbol.breaks}"
    elif symbol.kind == "method":
        method = getattr(cls, symbol.name, None)
        assert callable(method), f"{symbol.owner}.{symbol.name} is gone: {symbol.breaks}"
        params = tuple(inspect.signature(method).parameters)
        assert params == symbol.params, (
            f"{symbol.owner}.{symbol.name} now takes {params}, dqhash expects {symbol.params}: {symbol.breaks}"
        )
    else:
        assert symbol.kind == "attribute"
        assert _sets_attribute(cls, symbol.name), f"{symbol.owner} no longer sets self.{symbol.name}: {symbol.breaks}"


def test_the_fence_lists_every_symbol_once() -> None:
    keys = [(s.owner, s.name) for s in SYMBOLS]
    assert len(keys) == len(set(keys))
    assert all(s.why and s.breaks for s in SYMBOLS)


def _framework_names() -> set[str]:
    return {s.name for s in SYMBOLS}


def _outside_the_fence() -> list[Path]:
    """The product's modules but the fence's (dqhash/agents and dqhash/tables are links: read once, at the top)."""
    own = [
        f
        for f in (ROOT / "dqhash").rglob("*.py")
        if f.relative_to(ROOT / "dqhash").parts[0] not in ("internals", "agents", "tables")
    ]
    return sorted([*own, *(ROOT / "agents").rglob("*.py"), *(ROOT / "tables").rglob("*.py")])


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of every private framework symbol the code uses: a listed name, reached on anything, or
    any underscored attribute reached through ``super()`` (a framework class's private hook)."""
    listed = _framework_names()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if node.attr in PUBLIC_UNDERSCORED:
                continue
            via_super = (
                isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "super"
            )
            if node.attr in listed or via_super:
                found.append((node.lineno, node.attr))
    return found


def test_no_module_outside_the_fence_uses_a_private_framework_symbol() -> None:
    offenders = {
        str(path.relative_to(ROOT)): uses for path in _outside_the_fence() if (uses := private_uses(path.read_text()))
    }
    assert offenders == {}, f"private framework symbols outside dqhash/internals: {offenders}"


def test_the_check_finds_a_private_use() -> None:
    """The check itself can fail: a listed symbol, and a private hook through super()."""
    assert private_uses("store._dbs.get(1)\n") == [(1, "_dbs")]
    assert private_uses("class W:\n    def f(self):\n        return super()._hook()\n") == [(3, "_hook")]
    assert private_uses("t._replace(a=1)\nself._mine = 1\n") == []


@pytest.mark.parametrize("copy, original, what", COPIES)
def test_copies_of_faust_logic_still_match_faust(copy: str, original: str, what: str) -> None:
    checks = {
        "dqhash.internals.transport:_fill_gaps": _fill_gaps_commits_as_faust,
        "dqhash.internals.rocksdb_memory:SharedMemory.table_factory": _table_factory_sets_what_faust_sets,
        "dqhash.internals.recovery:BulkRecovery._slurp_changelogs": applies_what_fausts_loop_applies,
    }
    checks[copy](what)


def _table_factory_sets_what_faust_sets(what: str) -> None:
    """Faust's ``as_options`` sets its table factory's bloom filter, cache and index and nothing else; the copy sets
    the same (with the shared cache). A Faust that sets anything more fails here."""
    import ast
    import textwrap

    from faust.stores.rocksdb import RocksDBOptions

    from dqhash.internals.rocksdb_memory import SharedMemory

    def calls(function: object, name: str, owner: str) -> dict[str, str]:
        """``name.set_x(args)`` calls in the function, their arguments as source, the owner's name made alike."""
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
        return {
            node.func.attr: ast.unparse(node).split("(", 1)[1].replace(owner + ".", "owner.")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
        }

    faust = calls(RocksDBOptions.as_options, "table_factory_options", "self")
    mine = calls(SharedMemory.table_factory, "factory", "faust_options")
    assert set(faust) == set(mine) == {"set_bloom_filter", "set_block_cache", "set_index_type"}, what
    del faust["set_block_cache"], mine["set_block_cache"]  # the one difference: the shared cache
    assert mine == faust, what


def _fill_gaps_commits_as_faust(what: str) -> None:
    """``_fill_gaps`` against Faust's own ``_new_offset`` on the same acknowledged offsets and gaps."""
    from faust.transport.consumer import Consumer
    from faust.types import TP
    from intervaltree import IntervalTree

    from dqhash.internals.transport import _fill_gaps

    tp = TP("t", 0)
    for acked, gaps in [
        ([10, 11, 15], [(12, 15)]),
        ([3, 4], [(5, 9)]),
        ([7], []),
        ([20, 21, 30], [(22, 25), (25, 30)]),
    ]:
        stock = SimpleNamespace(
            _acked={tp: list(acked)},
            _acked_index={tp: set(acked)},
            _gap={tp: IntervalTree.from_tuples(gaps)},
            _committed_offset={tp: acked[0]},
        )
        expected = Consumer._new_offset(stock, tp)  # Faust's own code, on a stand-in for its state
        mine = list(acked)
        tree = IntervalTree.from_tuples(gaps)
        _fill_gaps(tree, mine)
        mine.sort()
        run = 0
        while run + 1 < len(mine) and mine[run + 1] == mine[run] + 1:
            run += 1
        assert mine[run] + 1 == expected, f"{what}: Faust commits {expected}, dqhash's copy fills to {mine[run] + 1}"
