"""``python -m vidshield ...`` runs the command line (e.g. from ``src/`` where it is not installed)."""

import sys

from vidshield.cli import main

sys.exit(main())
