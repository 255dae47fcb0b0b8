"""``python -m arraybragg``: the same as the ``arraybragg`` command."""
import sys

from .cli import main

sys.exit(main())
