"""``python -m slaballoc``: the same as the ``slaballoc`` command."""

import sys

from .cli import main

sys.exit(main())
