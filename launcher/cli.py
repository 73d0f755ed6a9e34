"""`python -m launcher` entry point."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from launcher.accounts_cli import COMMANDS, accounts
from launcher.launch import Launcher
from launcher.options import resolve


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if (
        args
        and args[0] in ("users", "tokens", "login-link", "--data-dir")
        and (args[0] != "--data-dir" or len(args) > 2 and args[2] in COMMANDS)
    ):
        return _accounts(args)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="launcher | %(levelname)s %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return Launcher(resolve(args)).run()


def _accounts(args: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        accounts.main(args=args, prog_name="python -m launcher", standalone_mode=False)
    except click.exceptions.Abort:
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0
