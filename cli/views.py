"""Reads answered from the projection views, and the commands that keep views current.

``projections status|catch-up|rebuild|run``, ``settlements``, ``reputation``,
``portfolio show``, ``account statement|inbox``, ``artifact book|list``. Every read
first brings the views up to date with the log (a progress bar when that takes a
while), or with ``--no-catch-up`` answers from the views as they are and says on stderr
how far behind the log they are.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from stakeledger.api.inputs import printable
from stakeledger.cli.context import CliContext, get_context
from stakeledger.cli.output import emit_json, error_console, fail, say, strong, table
from stakeledger.domain.errors import InvalidInputError, UnknownAccountError
from stakeledger.domain.model.accounts import AGENT
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.rules.risk.pretrade import context_parts
from stakeledger.projections import queries
from stakeledger.projections.runner import POLL_SECONDS, CatchUpReport, Runner
from stakeledger.projections.store import ViewStore, open_store
from stakeledger.projections.views import view_names, views_named

projections_app = typer.Typer(
    help="The read-side views: status, catch-up, rebuild, and the worker that keeps them current.", no_args_is_help=True
)

NoCatchUp = Annotated[
    bool,
    typer.Option("--no-catch-up", help="Answer from the views as they are; say how far behind the log they are."),
]
Limit = Annotated[int, typer.Option("--limit", help="At most this many rows (1-10000).")]


def register(
    app: typer.Typer,
    *,
    account_app: typer.Typer | None = None,
    artifact_app: typer.Typer | None = None,
    portfolio_app: typer.Typer | None = None,
) -> None:
    """Add the view-backed commands. The ``account``, ``artifact`` and ``portfolio``
    groups default to the ones cli.accounts, cli.markets and cli.portfolio register."""
    if account_app is None:
        from stakeledger.cli.accounts import account_app
    if artifact_app is None:
        from stakeledger.cli.markets import artifact_app
    if portfolio_app is None:
        from stakeledger.cli.portfolio import portfolio_app
    app.add_typer(projections_app, name="projections")
    app.command("settlements")(settlements)
    app.command("reputation")(reputation)
    portfolio_app.command("show")(portfolio_show)
    account_app.command("show")(account_show)
    account_app.command("statement")(statement)
    account_app.command("inbox")(inbox)
    artifact_app.command("book")(book)
    artifact_app.command("list")(list_artifacts)


# Catching up, with a progress bar --------------------------------------------------------


class _RateColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        # A pass that ends within rich's sampling window has no sampled speed: use the average.
        speed = task.finished_speed or task.speed or (task.completed / task.elapsed if task.elapsed else None)
        return Text(f"{speed:,.0f} events/s" if speed else "… events/s", style="progress.data.speed")


def progress_bar(label: str, *, console: Console, transient: bool, disable: bool = False) -> Progress:
    """Log positions folded, events/s and time left: the bar of every pass over the log."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=disable,
    )


def _progress_bar(context: CliContext, label: str, *, transient: bool) -> Progress:
    return progress_bar(
        label, console=error_console, transient=transient, disable=context.as_json or not error_console.is_terminal
    )


def _run_with_progress(context: CliContext, label: str, work: Any, *, transient: bool) -> CatchUpReport:
    with _progress_bar(context, label, transient=transient) as progress:
        task = progress.add_task(label, total=None)
        return work(lambda done, total: progress.update(task, completed=done, total=total))


@contextmanager
def current_views(context: CliContext, *, no_catch_up: bool = False) -> Iterator[ViewStore]:
    """The view store, caught up with the log first unless ``no_catch_up``."""
    store = open_store(context.app)
    try:
        runner = Runner(context.app, store)
        if no_catch_up:
            runner.prepare()
            head = runner.head()
            positions = store.positions()
            lowest = min((positions.get(name, 0) for name in view_names()), default=head)
            if lowest < head:
                error_console.print(
                    f"note: the views are up to {head - lowest} events behind the log (position {lowest} of {head}); "
                    "run 'stakeledger projections catch-up', or drop --no-catch-up",
                    highlight=False,
                    markup=False,
                )
        else:
            _run_with_progress(
                context, "catching up", lambda progress: runner.catch_up(progress=progress), transient=True
            )
        yield store
    finally:
        store.close()


def _amount(units: int | str | None, decimals: int) -> str:
    return "" if units is None else format_amount(int(units), decimals)


def _report_json(report: CatchUpReport) -> dict[str, Any]:
    return {
        "views": list(report.views),
        "from_position": report.start,
        "head": report.head,
        "events": report.events,
        "pages": report.pages,
        "rows_written": report.rows_written,
        "seconds": round(report.seconds, 3),
        "events_per_s": round(report.events_per_second, 1),
        "positions": report.positions,
    }


# projections ... ----------------------------------------------------------------------------------


@projections_app.command("status")
def status(ctx: typer.Context) -> None:
    """Per view: the last applied log position, the lag behind the log, and its row count."""
    context = get_context(ctx)
    store = open_store(context.app)
    try:
        rows = queries.status(store, context.app)
    finally:
        store.close()
    if context.as_json:
        emit_json(rows)
        return
    state = lambda r: "needs rebuild" if r["needs_rebuild"] else ("current" if r["lag"] == 0 else "behind")  # noqa: E731
    table(
        f"Views (log head {rows[0]['head'] if rows else 0})",
        ["view", "position", "lag", "rows", "state"],
        [[r["view"], r["position"], r["lag"], r["rows"], state(r)] for r in rows],
        right=["position", "lag", "rows"],
    )


def _page_size(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 100_000:
        raise InvalidInputError(f"page size must be from 1 to 100000, got {value}")
    return value


PageSize = Annotated[
    Optional[int],
    typer.Option("--page-size", help="Events per page, one transaction each (default 20,000; 50,000 for a rebuild)."),
]


def _run_and_report(
    context: CliContext, label: str, work: Any, views: Any = None, page_size: int | None = None
) -> CatchUpReport:
    """Run ``work(runner, progress)`` over the views with a progress bar; print or emit its report."""
    store = open_store(context.app)
    try:
        runner = Runner(context.app, store, views, page_size=_page_size(page_size))
        report = _run_with_progress(context, label, lambda progress: work(runner, progress), transient=False)
    finally:
        store.close()
    if context.as_json:
        emit_json(_report_json(report))
    return report


@projections_app.command("catch-up")
def catch_up(ctx: typer.Context, page_size: PageSize = None) -> None:
    """Apply every event the views have not seen yet."""
    context = get_context(ctx)
    report = _run_and_report(context, "catching up", lambda runner, p: runner.catch_up(progress=p), page_size=page_size)
    if not context.as_json:
        say(
            f"Views at position {report.head}: applied {report.events} events in {report.seconds:.2f} s "
            f"({report.events_per_second:,.0f} events/s)."
        )


@projections_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    name: Annotated[
        Optional[str], typer.Argument(metavar="[NAME]", help=f"One view: {', '.join(view_names())}.")
    ] = None,
    all_views: Annotated[bool, typer.Option("--all", help="Rebuild every view.")] = False,
    page_size: PageSize = None,
) -> None:
    """Drop a view's rows and replay the whole log into it."""
    if (name is None) == (not all_views):
        raise InvalidInputError("name one view to rebuild, or pass --all (not both)")
    context = get_context(ctx)
    chosen = views_named(None if all_views else [name])
    report = _run_and_report(context, "rebuilding", lambda runner, p: runner.rebuild(progress=p), chosen, page_size)
    if not context.as_json:
        say(
            f"Rebuilt {', '.join(report.views)} from {report.events} events in {report.seconds:.2f} s "
            f"({report.events_per_second:,.0f} events/s)."
        )


@projections_app.command("run")
def run(
    ctx: typer.Context,
    poll_seconds: Annotated[float, typer.Option(help="SQLite: seconds between polls of the log.")] = POLL_SECONDS,
    page_size: PageSize = None,
    expire_every: Annotated[
        float,
        typer.Option(help="Seconds between sweeps that release expired orders' escrow (0: no sweeps)."),
    ] = 30.0,
) -> None:
    """Keep every view current until stopped (Ctrl-C or SIGTERM). On PostgreSQL it wakes on
    the event table's NOTIFY; on SQLite it polls. Every --expire-every seconds it also writes
    the release of orders past their expiry (as `stakeledger orders expire` does)."""
    if not 0.01 <= poll_seconds <= 60:
        raise InvalidInputError("poll seconds must be from 0.01 to 60")
    if not (expire_every == 0 or 0.1 <= expire_every <= 3600):
        raise InvalidInputError("--expire-every takes seconds from 0.1 to 3600, or 0 for no sweeps")
    context = get_context(ctx)
    store = open_store(context.app)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}

    def applied(report: CatchUpReport) -> None:
        if context.as_json:
            emit_json(_report_json(report))
        else:
            say(
                f"applied {report.events} events up to position {report.head} ({report.events_per_second:,.0f} events/s)"
            )

    sweeper = _expiry_sweeper(context, stop, expire_every) if expire_every else None
    try:
        if not context.as_json:
            say(f"Keeping views current on {store.description} (Ctrl-C to stop).")
        Runner(context.app, store, page_size=_page_size(page_size)).run_forever(
            stop,
            poll_seconds=poll_seconds,
            on_catch_up=applied,
            on_error=lambda error: fail("PROJECTIONS", f"{type(error).__name__}: {error}; retrying"),
        )
    finally:
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=10)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        store.close()


def _expiry_sweeper(context: CliContext, stop: threading.Event, every_seconds: float) -> threading.Thread:
    """A thread that writes the release of expired orders every ``every_seconds`` until ``stop``."""

    def sweep() -> None:
        while not stop.wait(every_seconds):
            try:
                released = context.app.expire_orders()["expired"]
            except Exception as error:  # noqa: BLE001 - a worker reports and tries again next time
                fail("EXPIRY_SWEEP", f"{type(error).__name__}: {error}; retrying")
                continue
            if released and not context.as_json:
                say(f"released {len(released)} expired order(s): {', '.join(r['order'] for r in released)}")

    thread = threading.Thread(target=sweep, name="expiry-sweep", daemon=True)
    thread.start()
    return thread


# Reads ---------------------------------------------------------------------------------------------


def settlements(
    ctx: typer.Context,
    artifact: Annotated[Optional[str], typer.Option(help="Only this artifact.")] = None,
    agent: Annotated[Optional[str], typer.Option(help="Only this agent.")] = None,
    limit: Limit = queries.DEFAULT_LIMIT,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Settlement history, newest first: settled and partially settled positions, bounty payouts."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        rows = queries.settlement_history(store, artifact=artifact, agent=agent, limit=limit)
    if context.as_json:
        emit_json(rows)
        return
    d = context.app.decimals
    table(
        "Settlements (newest first)",
        ["pos", "time", "agent", "artifact", "position", "kind", "state", "p(long)", "payout", "P&L"],
        [
            [
                r["position"],
                (r["at"] or "")[:19],
                r["agent"],
                r["artifact"],
                r["position_id"] or r["bounty_id"],
                r["kind"],
                r["state"] or "",
                r["price_long"] or "",
                _amount(r["payout_units"], d),
                _amount(r["pnl_units"], d),
            ]
            for r in rows
        ],
        right=["pos", "p(long)", "payout", "P&L"],
    )


def reputation(
    ctx: typer.Context,
    agent: Annotated[Optional[str], typer.Argument(metavar="[AGENT]", help="One agent: its history too.")] = None,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Believability now, and each change with the settlement that caused it."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        data = queries.reputation(store, agent)
    if context.as_json:
        emit_json(data)
        return
    if agent is None:
        table(
            "Reputation",
            ["agent", "believability", "predictions", "correct"],
            [[r["agent"], r["believability"], r["predictions"], r["correct"]] for r in data],
            right=["believability", "predictions", "correct"],
        )
        return
    d = context.app.decimals
    say(
        Text.assemble(
            strong(agent),
            f": believability {data['believability']} after {data['predictions']} predictions "
            f"({data['correct']} correct)",
        )
    )
    table(
        "Changes (newest first)",
        ["pos", "time", "settlement", "correct", "stake", "before", "after"],
        [
            [
                h["position"],
                (h["at"] or "")[:19],
                h["settlement"],
                "yes" if h["correct"] else "no",
                _amount(h["stake_units"], d),
                h["before"],
                h["after"],
            ]
            for h in data["history"]
        ],
        right=["pos", "stake", "before", "after"],
    )


def portfolio_show(ctx: typer.Context, agent: str, no_catch_up: NoCatchUp = False) -> None:
    """An agent's positions at exit value (what closing each now would pay), resting orders and P&L.

    An order past its expiry is not shown as resting: its escrow is free from its expiry
    time, whether or not the release is written yet (`stakeledger orders expire`)."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        data = queries.portfolio_at_exit(store, agent, now=context.app.clock.now())
    if context.as_json:
        emit_json(data)
        return
    d = context.app.decimals
    _positions_and_orders(f"Portfolio {agent}", data, d)
    if data["risk_events"]:
        table(
            "Risk decisions, newest first",
            ["pos", "decision", "reason", "artifact", "side", "tokens", "context"],
            [
                [
                    e["position"],
                    e["kind"],
                    e["reason"],
                    e["artifact"] or "",
                    e["side"] or "",
                    _amount(e["tokens_units"], d),
                    ", ".join(context_parts(dict(sorted(e["context"].items())), d)),
                ]
                for e in data["risk_events"]
            ],
            right=["pos", "tokens"],
        )
    say(
        f"Live cost {_amount(data['cost_units'], d)}, exit value {_amount(data['value_units'], d)}, "
        f"unrealized {_amount(data['unrealized_pnl_units'], d)}, realized {_amount(data['realized_pnl_units'], d)}"
    )
    if int(data["escrow_units"]) or int(data["expired_escrow_units"]):
        say(
            f"Escrow in resting orders {_amount(data['escrow_units'], d)}; "
            f"freed by expiry, release pending {_amount(data['expired_escrow_units'], d)}"
        )


def _positions_and_orders(title: str, data: dict[str, Any], d: int) -> None:
    table(
        title,
        ["position", "side", "status", "quantity", "cost", "entry", "value", "unrealized", "realized"],
        [
            [
                p["position_id"],
                p["side"],
                p["status"],
                _amount(p["quantity_units"], d),
                _amount(p["cost_units"], d),
                p["entry_price"],
                _amount(p["value_units"], d),
                _amount(p["unrealized_pnl_units"], d),
                _amount(p["realized_pnl_units"], d),
            ]
            for p in data["positions"]
        ],
        right=["quantity", "cost", "entry", "value", "unrealized", "realized"],
    )
    if data["orders"]:
        table(
            "Resting limit orders",
            ["order", "side", "limit", "remaining", "expires"],
            [
                [
                    o["order_id"],
                    o["side"],
                    o["limit_price"],
                    _amount(o["remaining_units"], d),
                    (o["expires_at"] or "never")[:16],
                ]
                for o in data["orders"]
            ],
            right=["limit", "remaining"],
        )


def account_show(ctx: typer.Context, agent: str, no_catch_up: NoCatchUp = False) -> None:
    """One account's balance; for an agent, also what is available (the balance plus escrow of
    orders past their expiry), its live positions at exit value and its resting limit orders."""
    context = get_context(ctx)
    app = context.app
    account = app.get_account(agent)  # the balance from the account itself, not a view
    data: dict[str, Any] = {
        "account": account.account_id,
        "kind": account.kind,
        "balance_units": str(account.balance_units),
        "balance": format_amount(account.balance_units, app.decimals),
        "version": account.version,
    }
    if account.kind == AGENT:
        with current_views(context, no_catch_up=no_catch_up) as store:
            try:
                held = queries.portfolio_at_exit(store, account.account_id, now=app.clock.now())
            except UnknownAccountError:  # opened after the views' position (--no-catch-up): nothing held yet
                held = {"positions": [], "orders": [], "expired_escrow_units": "0"}
        available = account.balance_units + int(held["expired_escrow_units"])
        data["available_units"] = str(available)
        data["available"] = format_amount(available, app.decimals)
        data["positions"] = [p for p in held["positions"] if p["live"]]
        data["orders"] = held["orders"]
    if context.as_json:
        emit_json(data)
        return
    columns, row = ["kind", "balance", "version"], [data["kind"], data["balance"], data["version"]]
    if "available" in data:
        columns, row = ["kind", "balance", "available", "version"], [*row[:2], data["available"], row[2]]
    table(f"Account {account.account_id}", columns, [row], right=["balance", "available"])
    if account.kind == AGENT:
        if data["positions"] or data["orders"]:
            _positions_and_orders("Live positions", data, app.decimals)
        else:
            say("No live positions and no resting orders.")


def statement(
    ctx: typer.Context,
    agent: str,
    at: Annotated[
        Optional[int], typer.Option("--at", help="Log position: the statement and balance as they stood then.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many of the latest lines (1-10000).")
    ] = queries.MAX_LIMIT,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Every movement on an account with reason, counterparty and running balance."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        data = queries.statement(store, agent, at=at, limit=limit)
    if context.as_json:
        emit_json(data)
        return
    d = context.app.decimals
    title = f"Statement {agent}" + (f" at position {at}" if at is not None else "")
    table(
        title,
        ["pos", "time", "reason", "counterparty", "amount", "balance"],
        [
            [
                line["position"],
                line["at"][:19],
                line["reason"],
                line["counterparty"],
                _amount(line["delta_units"], d),
                _amount(line["balance_units"], d),
            ]
            for line in data["lines"]
        ],
        right=["pos", "amount", "balance"],
    )
    if data["lines_total"] > len(data["lines"]):
        say(f"(the latest {len(data['lines'])} of {data['lines_total']} lines)")
    say(f"Balance: {_amount(data['balance_units'], d)}")


def inbox(ctx: typer.Context, agent: str, limit: Limit = queries.DEFAULT_LIMIT, no_catch_up: NoCatchUp = False) -> None:
    """The settlement notifications an agent received, newest first."""
    context = get_context(ctx)
    d = context.app.decimals
    with current_views(context, no_catch_up=no_catch_up) as store:
        rows = queries.inbox(store, agent, decimals=d, limit=limit)
    if context.as_json:
        emit_json(rows)
        return
    table(
        f"Inbox {agent}",
        ["pos", "time", "kind", "message"],
        [[r["position"], (r["at"] or "")[:19], r["kind"], r["message"]] for r in rows],
        right=["pos"],
    )


def book(
    ctx: typer.Context, artifact_id: Annotated[str, typer.Argument(metavar="ID")], no_catch_up: NoCatchUp = False
) -> None:
    """Prices, resting limit orders and the cost to move the long price to 0.1 … 0.9."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        data = queries.book(store, artifact_id)
    if context.as_json:
        emit_json(data)
        return
    d = context.app.decimals
    say(
        Text.assemble(
            strong(artifact_id),
            f"  p(long) {data['price_long']}  p(short) {data['price_short']}  state {printable(str(data['state']))}",
        )
    )
    table(
        "Resting limit orders",
        ["order", "agent", "side", "limit", "remaining", "expires"],
        [
            [
                o["order_id"],
                o["agent"],
                o["side"],
                o["limit_price"],
                _amount(o["remaining_units"], d),
                (o["expires_at"] or "never")[:16],
            ]
            for o in data["orders"]
        ],
        right=["limit", "remaining"],
    )
    table(
        "Depth: cost to move p(long)",
        ["target", "buy", "shares", "cost"],
        [
            [r["target_long"], r["side"], _amount(r["shares_units"], d), _amount(r["cost_units"], d)]
            for r in data["depth"]
        ],
        right=["target", "shares", "cost"],
    )


def list_artifacts(
    ctx: typer.Context,
    by_capital: Annotated[
        bool, typer.Option("--by-capital", help="Order by capital committed in live positions, most first.")
    ] = False,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Every artifact with its state, p(long) (a settled market's settlement price), pool and capital committed."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        rows = queries.artifacts(store, by_capital=by_capital)
    if context.as_json:
        emit_json(rows)
        return
    d = context.app.decimals
    table(
        "Artifacts" + (" by capital committed" if by_capital else ""),
        ["artifact", "state", "group", "p(long)", "pool", "capital committed", "live", "open interest", "title"],
        [
            [
                r["artifact"],
                r["state"],
                r["group"] or "",
                r["price_long"] if r["settlement_price"] is None else r["settlement_price"],  # settled: its price
                _amount(r["pool_units"], d),
                _amount(r["capital_committed_units"], d),
                r["live_positions"],
                _amount(r["open_interest_units"], d),
                r["title"],
            ]
            for r in rows
        ],
        right=["p(long)", "pool", "capital committed", "live", "open interest"],
    )
