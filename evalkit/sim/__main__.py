"""`python -m evalkit.sim [options]`: the same as `evalkit sim`."""

import sys

from evalkit.sim.command import run_cli

sys.exit(run_cli())
