"""``python -m hostage``."""

from hostage.cli import main

raise SystemExit(main())
