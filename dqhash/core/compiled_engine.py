"""The modules of a record's hot path that a wheel compiles with mypyc, and which of them this install runs compiled.

A record's own Python (parse, classify, the pair updates, the staged writes, the windows and snapshot books) is
most of a worker's CPU, spread over dozens of small functions: no one of them is worth rewriting in C, but
compiled together they cost markedly less (docs/performance.md, "The compiled engine"). mypyc compiles the
modules as they are written; the source stays the reference, and the editable install (the README's commands)
runs it.

``setup.py`` reads :data:`MODULES` from this file without importing the package, so this list is the one
declaration of what is compiled. A module is listed only when it is typed strictly (``[tool.mypy]``), and never a
module that defines the NamedTuples built past their constructors (``core.tuples.build``) or coroutines.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

MODULES = (
    "dqhash.core.catalog",
    "dqhash.core.classify",
    "dqhash.core.codec",
    "dqhash.core.comparison",
    "dqhash.core.contracts",
    "dqhash.core.deadlines",
    "dqhash.core.outputs",
    "dqhash.core.partitioning",
    "dqhash.core.pending_changes",
    "dqhash.core.record_keys",
    "dqhash.core.snapshots",
    "dqhash.core.table_keys",
    "dqhash.core.tally",
    "dqhash.core.timeutil",
    "dqhash.core.verdicts",
    "dqhash.core.windows",
    "dqhash.engine.dead_letters",
    "dqhash.engine.effects",
    "dqhash.engine.expiry",
    "dqhash.engine.pair_updates",
    "dqhash.engine.reconciler",
    "dqhash.engine.routing",
    "dqhash.engine.snapshot_book",
    "dqhash.engine.staged",
    "dqhash.engine.verified",
    "dqhash.engine.window_book",
)


def compiled_modules() -> list[str]:
    """The listed modules this process imported from an extension module rather than from their source."""
    return [name for name in MODULES if _is_extension(importlib.import_module(name).__file__ or "")]


def describe() -> str:
    """What ``dqhash --version`` says of the engine."""
    compiled = compiled_modules()
    if len(compiled) == len(MODULES):
        return "compiled"
    if not compiled:
        return "pure Python"
    return f"partly compiled ({len(compiled)} of {len(MODULES)} modules)"


def _is_extension(path: str) -> bool:
    return any(path.endswith(suffix) for suffix in EXTENSION_SUFFIXES)
