"""`python -m mtm` runs the CLI."""

import sys

from mtm.cli import main

sys.exit(main())
