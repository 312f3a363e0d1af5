"""`python -m evalkit.cli`."""

from evalkit.cli.commands import main

raise SystemExit(main())
