"""`python -m launcher`: run Agentdeck on this machine."""

from launcher.cli import main

raise SystemExit(main())
