"""``python -m pixseek``: the command line."""

import sys

from pixseek.cli.main import main

sys.exit(main())
