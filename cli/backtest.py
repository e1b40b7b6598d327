"""``stakeledger backtest STRATEGY.py``: a strategy replayed over recorded history.

The replay runs against an in-memory copy of the ledger (agents/backtest.py says what is
replayed and what is not); the store named by ``--db`` is only read. Every input is checked
before anything runs, and the PNG is written only once the run succeeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, error_console, say, table
from stakeledger.cli.views import progress_bar
from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.accounts import TREASURY, account_uuid
from stakeledger.domain.model.settings import LEDGER_SETTINGS_ID
from stakeledger.domain.rules.money import format_amount, parse_amount
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.log import iter_notifications, max_position
from stakeledger.projections.chart import drawdowns, pyplot, save_png
from stakeledger.projections.store import ViewStore

DEFAULT_PNG = "backtest-equity.png"

FRESH_AGENT = "backtest-agent"
INIT_SEARCH = 100  # init's events are the log's first
DEFAULT_CAPITAL = "10000"
DECISION_ROWS_MAX = 200  # the table shows the last ones; --json has them all


def register(app: typer.Typer) -> None:
    """Adds the ``backtest`` command."""
    app.command("backtest")(backtest)


def after_init(ledger: StakeLedger) -> int:
    """The log position just after ``init`` wrote the settings and opened the treasury: a copy
    cut there is an initialised ledger with nothing else in it (0 on an empty log)."""
    wanted = {LEDGER_SETTINGS_ID, account_uuid(TREASURY)}
    for notification in iter_notifications(ledger, until=INIT_SEARCH):
        wanted.discard(notification.originator_id)
        if not wanted:
            return notification.id
    return 0


def feed_messages(ledger: StakeLedger, store: ViewStore, after: int, until: int) -> tuple[list[dict[str, Any]], int]:
    """The live feed's own message builder (api/feed.py) over the copy's views."""
    from stakeledger.api.feed import build_messages  # imported here: FastAPI loads slowly
    from stakeledger.api.state import ApiState

    return build_messages(ApiState(ledger, catch_up=False), store, after, until)


def backtest(
    ctx: typer.Context,
    strategy_file: Annotated[
        Path,
        typer.Argument(
            help="A Python file defining strategy(orchestrator, candle), and optionally setup(orchestrator).",
            show_default=False,
        ),
    ],
    from_position: Annotated[
        Optional[int],
        typer.Option(
            "--from",
            help="Log position to start from: the copy holds the events up to it (default: just after init).",
        ),
    ] = None,
    to_position: Annotated[
        Optional[int], typer.Option("--to", help="Last log position to replay (default: the log's last).")
    ] = None,
    markets: Annotated[
        Optional[str],
        typer.Option("--markets", help="Comma-separated markets to replay trades on and follow (default: all)."),
    ] = None,
    agent: Annotated[
        Optional[str],
        typer.Option(
            "--agent",
            help=f"The agent the strategy trades as; its own recorded orders are skipped (default: a fresh "
            f"{FRESH_AGENT!r} funded with --capital).",
        ),
    ] = None,
    capital: Annotated[
        Optional[str],
        typer.Option(
            "--capital",
            help=f"Tokens minted to the agent in the copy at the start (default {DEFAULT_CAPITAL} for the fresh agent).",
        ),
    ] = None,
    interval: Annotated[str, typer.Option("--interval", help="Candle interval: 1m, 5m, 1h or 1d.")] = "5m",
    png: Annotated[Path, typer.Option("--png", help="Where to write the equity curve (a .png file).")] = Path(
        DEFAULT_PNG
    ),
) -> None:
    """Replay recorded candles and trades through a strategy against an in-memory copy of the ledger."""
    context = get_context(ctx)
    if png.suffix.lower() != ".png":
        raise InvalidInputError(f"the equity curve is written as PNG: give --png a .png file name, got {str(png)!r}")
    if not png.parent.exists():
        raise InvalidInputError(f"directory does not exist: {png.parent}")
    from stakeledger.agents import backtest as backtesting  # loaded by this command only

    strategy = backtesting.load_strategy(strategy_file)
    source = context.app
    decimals = source.decimals
    end = max_position(source) if to_position is None else to_position
    names = None if markets is None else [name.strip() for name in markets.split(",")]
    if agent is None and capital is None:
        capital = DEFAULT_CAPITAL
    capital_units = None if capital is None else parse_amount(capital, decimals)
    with progress_bar(
        "replaying", console=error_console, transient=True, disable=context.as_json or not error_console.is_terminal
    ) as bar:
        task = bar.add_task("replay", total=None)
        result = backtesting.run_backtest(
            source,
            strategy,
            start=after_init(source) if from_position is None else from_position,
            end=end,
            agent=agent or FRESH_AGENT,
            markets=names,
            interval=interval,
            feed=feed_messages,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            capital_units=capital_units,
        )
    draw_equity_chart(result, png, decimals)
    if context.as_json:
        emit_json({**result.to_dict(), "png": str(png)})
        return
    show(result, decimals)
    say(f"Wrote {png}.")


def _pct(text: str | None) -> str:
    return "-" if text is None else f"{float(text) * 100:.2f} %"


def _ratio(text: str | None) -> str:
    return "-" if text is None else f"{float(text):.4f}"


def show(result: Any, decimals: int) -> None:
    """The statistics, the decisions (the last DECISION_ROWS_MAX) and what was not replayed."""
    stats = result.statistics

    def tokens(units: str | None) -> str:
        return "-" if units is None else format_amount(int(units), decimals, places=2)

    rows = [
        ("positions replayed", f"{result.start + 1}..{result.end} ({result.events} events)"),
        ("candles", f"{len(result.candles)} ({stats['periods']} returns, per candle, not annualised)"),
        ("start equity", tokens(stats["start_equity_units"])),
        ("end equity", tokens(stats["end_equity_units"])),
        ("deposits", tokens(stats["deposits_units"])),
        ("return", _pct(stats["return"])),
        ("Sharpe", _ratio(stats["sharpe"])),
        ("Sortino", _ratio(stats["sortino"])),
        ("max drawdown", _pct(stats["max_drawdown"])),
        ("win rate", f"{_pct(stats['win_rate'])} ({stats['wins']} of {stats['closed']} closed)"),
    ]
    for group, units in stats["exposure_by_group_units"].items():
        peak = stats["peak_exposure_by_group_units"].get(group)
        rows.append((f"exposure {group}", f"{tokens(units)} (peak {tokens(peak)})"))
    table(f"Backtest of {result.agent}", ["statistic", "value"], rows)
    decisions = result.decisions[-DECISION_ROWS_MAX:]
    table(
        f"Decisions ({len(result.decisions)}"
        + (f", the last {len(decisions)})" if len(decisions) < len(result.decisions) else ")"),
        ["at", "kind", "market", "side", "tokens", "result"],
        [
            (
                d["at"],
                d["kind"],
                d["market"],
                d["side"] or "",
                tokens(d["tokens_units"]),
                _outcome(d["result"], decimals),
            )
            for d in decisions
        ],
        right=("tokens",),
    )
    if result.notes:
        table(
            "Not replayed (refused in the copy)",
            ["position", "what", "error", "message"],
            [(n["position"], n["what"], n["error"], n["message"]) for n in result.notes[:DECISION_ROWS_MAX]],
        )


def _outcome(result: dict[str, Any], decimals: int) -> str:
    if "error" in result:
        return f"refused {result['error']}"
    if "rejected" in result:
        return f"rejected {result['rejected']}"
    if "proceeds_units" in result:
        return f"closed {result.get('position', '')} for {format_amount(int(result['proceeds_units']), decimals, places=2)}"
    if "shares_units" in result:
        return f"{result.get('position', '')} {format_amount(int(result['shares_units']), decimals, places=2)} shares"
    if "order" in result:
        return f"order {result['order']} {result.get('status', '')}"
    return result.get("not_placed") or "-"


def draw_equity_chart(result: Any, out: Path, decimals: int) -> Path:
    """The equity curve and its drawdown, one point per candle close, to a PNG."""
    plt = pyplot()
    scale = 10**decimals
    equity = [int(point["equity_units"]) / scale for point in result.equity]
    steps = list(range(len(equity)))
    drawdown = drawdowns(equity)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), gridspec_kw={"height_ratios": [3, 2]})
    top.plot(steps, equity, marker="o", markersize=3, color="#1f6feb")
    top.set_title(f"backtest of {result.agent}: equity at exit value (tokens), positions {result.start}..{result.end}")
    top.grid(alpha=0.3)
    bottom.fill_between(steps, drawdown, 0, color="#d1242f", alpha=0.4)
    bottom.set_title("drawdown (%)")
    bottom.set_xlabel("candle closes")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    return save_png(figure, out, dpi=100)
