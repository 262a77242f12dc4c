"""``python -m liposcope``: the same as the ``liposcope`` console script."""

import sys

from liposcope.cli import main

sys.exit(main())
