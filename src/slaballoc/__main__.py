"""``python -m slaballoc``: the same as the ``slaballoc`` command."""

import sys

from .tools.cli import main

sys.exit(main())
