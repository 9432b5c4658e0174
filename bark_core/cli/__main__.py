"""``python -m bark_core.cli``: the same as ``bark-core``."""

import sys

from .app import main

sys.exit(main())
