"""`python -m launcher` entry point."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from launcher.options import resolve
from launcher.stack import Launcher


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="launcher | %(levelname)s %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return Launcher(resolve(argv)).run()
