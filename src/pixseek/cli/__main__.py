"""``python -m pixseek.cli``: the command line."""

import sys

from pixseek.cli.main import main

sys.exit(main())
