"""`python -m driftwatch`: the same as the `driftwatch` command."""

import sys

from driftwatch.cli import main

sys.exit(main())
