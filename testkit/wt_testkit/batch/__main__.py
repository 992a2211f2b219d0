"""Lets ``python -m wt_testkit.batch`` start the stand-in (see :mod:`wt_testkit.batch.cli`)."""

import sys

from wt_testkit.batch.cli import main

sys.exit(main())
