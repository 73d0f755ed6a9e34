"""`python -m agentdeck`: the `agentdeck` command."""

from agentdeck.cli import main

raise SystemExit(main())
