"""The one part of the build pyproject.toml cannot declare: the hasher's compiled path.

``optional=True``: where no C compiler or Python headers are at hand, the install still succeeds and the
hasher runs on its pure-Python reference (``dqhash --version`` says which; docs/hashing.md §compiled path).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("dqhash.core._fasthash", ["dqhash/core/_fasthash.c"], optional=True, extra_compile_args=["-O2"])
    ]
)
