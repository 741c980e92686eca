"""``python -m slth``: see :mod:`slth.cli`."""

import sys

from .cli import main

sys.exit(main())
