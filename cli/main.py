"""The ``stakeledger`` command line: thin commands that parse, call the application, render."""

from __future__ import annotations

import functools
import sys
from typing import Annotated, Any, Optional

import typer
from eventsourcing.persistence import PersistenceError

from stakeledger.adapters.persistence.store_url import resolve_url
from stakeledger.cli import (
    accounts,
    admin,
    api,
    attribution,
    backtest,
    demo,
    evm,
    markets,
    portfolio,
    prices,
    settlement,
    views,
)
from stakeledger.cli.context import CliContext, close_opened, forget_opened
from stakeledger.cli.inputs import check_arguments
from stakeledger.cli.output import fail
from stakeledger.domain.errors import LedgerError

app = typer.Typer(
    name="stakeledger",
    help="Event-sourced token ledger for prediction markets on research artifacts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option(
            "--db",
            help="Store URL: sqlite:///path.db (default ./stakeledger.db) or postgresql://user:pw@host:port/db. Also STAKELEDGER_DATABASE_URL.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
) -> None:
    ctx.obj = CliContext(resolve_url(db), as_json=as_json)


admin.register(app)
accounts.register(app)
markets.register(app)
prices.register(app)
settlement.register(app)
portfolio.register(app)
attribution.register(app)  # after portfolio: it adds to the portfolio group
backtest.register(app)
views.register(app)  # after accounts, markets and portfolio: it adds commands to their groups
evm.register(app)
api.register(app)
demo.register(app)


def global_options_first(args: list[str]) -> list[str]:
    """Move ``--json`` and ``--db URL`` to the front, so ``stakeledger audit --json`` works as
    ``stakeledger --json audit`` does. Nothing after a ``--`` is touched."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg == "--json" or arg.startswith("--db="):
            front.append(arg)
        elif arg == "--db" and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


@functools.cache
def command() -> Any:
    """The click command tree, built once per process. Calling the Typer app would rebuild it
    from every command's signature on each call (a third of a second, paid again by every
    command a test runs in-process)."""
    return typer.main.get_command(app)


def main() -> None:
    """Console-script entry point: every refusal is one line on stderr and a non-zero exit."""
    forget_opened()
    try:
        _run()
    finally:
        close_opened()


def _run() -> None:
    try:
        check_arguments(sys.argv[1:])  # no control or invisible characters in any argument
        # Without standalone mode, typer returns the code of a raised typer.Exit.
        code = command().main(args=global_options_first(sys.argv[1:]), prog_name="stakeledger", standalone_mode=False)
    except LedgerError as error:
        fail(error.code, str(error))  # the domain words its amounts in tokens already
        sys.exit(1)
    except PersistenceError as error:
        fail("STORE_ERROR", str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        sys.exit(1)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        fail("ABORTED", "aborted")
        sys.exit(1)
    except typer.TyperException as error:  # usage errors: unknown option, missing argument
        error.show()
        sys.exit(getattr(error, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
