"""``python -m ackwatch``: the same as the ``ackwatch`` command."""

import sys

from .cli import main

sys.exit(main())
