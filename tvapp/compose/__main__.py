"""``python -m tvapp.compose JOB.json``: render one composition job (the core's worker process)."""

import sys

from tvapp.compose.worker import main

sys.exit(main(sys.argv[1:]))
