"""``python -m passport``: see :mod:`passport.cli`."""

import sys

from .cli import main

sys.exit(main())
