"""``python -m ibjax`` runs the command line."""

import sys

from ibjax.cli import main

sys.exit(main())
