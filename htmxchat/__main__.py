"""Entry point for `python -m htmxchat`."""

import sys

from htmxchat.cli import main

sys.exit(main())
