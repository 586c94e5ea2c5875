"""``python -m esox``: the esox command."""

import sys

from esox.cli import main

sys.exit(main())
