"""`python -m aekit ...` (also what `torchrun -m aekit` runs)."""

import sys

from aekit.cli import main

sys.exit(main())
