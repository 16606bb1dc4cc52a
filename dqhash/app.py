"""The Faust app of a worker: ``faust -A dqhash.app worker -l info``.

Settings come from the environment (``dqhash.settings``); ``dqhash.runtime`` builds everything from them.
Nothing imports this module: it is the entry point for Faust's command line only.
"""

from __future__ import annotations

import sys

from dqhash import settings as settings_module
from dqhash.runtime import build
from dqhash.settings import SettingsError

try:
    settings = settings_module.load()
except SettingsError as exc:
    print(f"dqhash: bad configuration: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

runtime = build(settings)
app = runtime.app
