"""``python -m adapterdrop``: the same as the ``adapterdrop`` console script."""

import sys

from adapterdrop.cli import main

sys.exit(main())
