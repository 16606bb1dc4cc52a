"""``python -m dqhash.cli``: the ``dqhash`` command."""

import sys

from dqhash.cli import main

if __name__ == "__main__":
    sys.exit(main())
