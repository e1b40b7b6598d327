"""``stakeledger demo``: a seeded scenario that exercises everything built so far.

The demo runs on a simulated clock and seeded ids, so two runs on fresh stores write
the same log. Each chapter prints what a user would want to see at that point.
"""

from __future__ import annotations

import typer
from rich.rule import Rule

from cli.context import get_context
from cli.output import console, say, table
from domain.accounts import TREASURY
from domain.application import StakeLedger, TransferRequest
from domain.clock import ManualClock
from domain.errors import LedgerError
from domain.ids import SeededIds
from domain.money import format_amount, parse_amount
from projections.audit import audit
from projections.statements import statement_lines

AGENTS = ("ada", "grace", "linus", "margaret", "dennis")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(ctx: typer.Context) -> None:
    """Run the seeded demo scenario on the chosen store (best on a fresh one)."""
    context = get_context(ctx)
    context.creating = True
    context.clock = ManualClock()
    app = StakeLedger.from_url(context.url, clock=context.clock, new_id=SeededIds(2026))
    if app.is_initialised():
        raise LedgerError(f"the demo needs a fresh store, but {context.url} already holds a ledger")
    Demo(app, context.clock).run()


class Demo:
    def __init__(self, app: StakeLedger, clock: ManualClock) -> None:
        self.app = app
        self.clock = clock

    def tokens(self, text: str) -> int:
        return parse_amount(text, self.app.decimals)

    def show(self, units: int) -> str:
        return format_amount(units, self.app.decimals)

    def chapter(self, title: str) -> None:
        console.print(Rule(f"[bold]{title}"))

    def run(self) -> None:
        self.accounts()
        self.closing_audit()

    # Chapters ------------------------------------------------------------------------

    def accounts(self) -> None:
        self.chapter("1. Accounts and double-entry transfers")
        self.app.initialise(decimals=18)
        for name in AGENTS:
            self.app.open_account(name)
            self.app.mint(name, self.tokens("10000"), command_id=f"demo-grant-{name}")
        say(f"Opened {len(AGENTS)} agents and minted 10,000 tokens each from the treasury.")
        # A retried command with the same id returns the first result and writes nothing.
        again = self.app.mint("ada", self.tokens("10000"), command_id="demo-grant-ada")
        say(f"Retried ada's grant with the same command id: same transfer {again['transfer_id'][:8]}…, nothing new written.")
        self.clock.advance(days=1)
        self.app.transfer("ada", "grace", self.tokens("1250.5"))
        self.app.transfer("grace", "linus", self.tokens("300"))
        self.app.burn("dennis", self.tokens("500"))
        self.app.transfer_many([
            TransferRequest("margaret", name, self.tokens("100")) for name in ("ada", "grace", "linus", "dennis")
        ])  # fmt: skip
        try:
            self.app.transfer("linus", "ada", self.tokens("1000000"))
        except LedgerError as refused:
            say(f"Refused as expected: [bold]{refused.code}[/] — {refused}")
        rows = [[name, self.show(self.app.balance_of(name))] for name in (*AGENTS, TREASURY)]
        table("Balances", ["account", "balance"], rows, right=["balance"])
        self.statement("grace")

    def statement(self, name: str) -> None:
        rows = [
            [line.position, line.at.date().isoformat(), line.reason, line.counterparty, self.show(line.delta_units), self.show(line.balance_units)]
            for line in statement_lines(self.app, name)
        ]  # fmt: skip
        table(f"Statement — {name}", ["pos", "date", "reason", "counterparty", "amount", "balance"], rows, right=["pos", "amount", "balance"])

    def closing_audit(self) -> None:
        self.chapter("Audit")
        report = audit(self.app)
        table(
            "Audit — " + ("clean" if report.clean else "VIOLATIONS"),
            ["events", "accounts", "transfers", "total supply", "seconds"],
            [[report.events, report.accounts, report.transfers, self.show(report.total_supply_units), f"{report.seconds:.3f}"]],
            right=["events", "accounts", "transfers", "total supply", "seconds"],
        )
        for violation in report.violations:
            console.print(f"[red]{violation}")
        if not report.clean:
            raise typer.Exit(1)
