"""``python -m ackwatch``: the same as the ``ackwatch`` command."""

import sys

from ackwatch.cli import main

sys.exit(main())
