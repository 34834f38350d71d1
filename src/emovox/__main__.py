"""Run the emovox command line: ``python -m emovox``."""

import sys

from .cli import main

sys.exit(main())
