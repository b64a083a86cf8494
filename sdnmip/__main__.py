"""`python -m sdnmip` is the `sdnmip` command."""

import sys

from sdnmip.cli import main

sys.exit(main())
