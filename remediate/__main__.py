"""``python -m remediate``."""

import sys

from remediate.cli.main import main

sys.exit(main())
