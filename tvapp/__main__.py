"""Run the `tvapp` command as `python -m tvapp`."""

from tvapp.cli import main

raise SystemExit(main())
