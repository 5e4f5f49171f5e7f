"""``python -m heaplint.engine`` runs the ``heaplint`` command line."""

import sys

from heaplint.engine.cli import main

sys.exit(main())
