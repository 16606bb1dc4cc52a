"""The parts of the build pyproject.toml cannot declare: the compiled paths.

- **The hasher** (``dqhash/core/_fasthash.c``): built by every install, editable or not.
- **The engine** (the modules ``dqhash/core/compiled_engine.py`` lists, compiled by mypyc): built into wheels
  only (``pip install .``, ``pip wheel``, the Docker image). An editable install (``pip install -e .``, the
  README's commands) runs the source, so an edited module is never shadowed by an older compiled one.
  ``DQHASH_PURE_PYTHON=1`` at build time leaves it out of a wheel too.

Both are ``optional``: where no C compiler or Python headers are at hand, the install still succeeds and runs
the pure-Python reference (``dqhash --version`` says which; docs/hashing.md, docs/performance.md). A build first
forgets what an earlier one left in ``build/lib*``: those files would go into the wheel as they are, compiled from
older source, even where this build compiles nothing.
"""

from __future__ import annotations

import glob
import os
import runpy
import shutil
import sys

from setuptools import Extension, setup

EDITABLE_COMMANDS = {"editable_wheel", "develop"}
#: the commands that build what goes into a wheel; pip's other calls (metadata, requirements) compile nothing
BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install"}


def hasher() -> list[Extension]:
    return [Extension("dqhash.core._fasthash", ["dqhash/core/_fasthash.c"], optional=True, extra_compile_args=["-O2"])]


def building_a_wheel() -> bool:
    commands = set(sys.argv)
    return bool(BUILD_COMMANDS & commands) and not EDITABLE_COMMANDS & commands


def forget_earlier_builds() -> None:
    for path in glob.glob(os.path.join("build", "lib*")):
        shutil.rmtree(path, ignore_errors=True)


def engine() -> list[Extension]:
    if not building_a_wheel() or os.environ.get("DQHASH_PURE_PYTHON") == "1":
        return []
    modules = runpy.run_path(os.path.join("dqhash", "core", "compiled_engine.py"))["MODULES"]
    paths = [name.replace(".", os.sep) + ".py" for name in modules]
    try:
        from mypyc.build import mypycify
    except ImportError:  # a build without pyproject.toml's build requirements: the engine stays pure Python
        print("dqhash: mypyc is not installed; the engine is built pure Python", file=sys.stderr)
        return []
    # the runtime dependencies are not installed where pip builds: mypy reads them as untyped
    extensions = mypycify(
        ["--config-file", "", "--ignore-missing-imports", *paths], opt_level="3", group_name="dqhash_engine"
    )
    for extension in extensions:
        extension.optional = True
    return extensions


if building_a_wheel():
    forget_earlier_builds()
setup(ext_modules=hasher() + engine())
