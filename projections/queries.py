"""Read queries over the views: plain functions the CLI and the HTTP API both call.

Each takes a view store (already caught up, or not: the caller decides) and returns
plain dicts and lists with amounts and prices as decimal strings of base units and
WAD, plus a human ``price`` string where a price is shown. Each query reads inside one
read transaction, so its rows come from one committed state of the views.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from stakeledger.domain.errors import InvalidInputError, UnknownAccountError, UnknownArtifactError
from stakeledger.domain.model.positions import LIVE_STATUSES
from stakeledger.domain.rules.lmsr import depth, prices_wad
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.rules.settlement import REPUTATION_START_WAD
from stakeledger.domain.vocabulary import WAD, Side
from stakeledger.projections.runner import Runner, ViewStatus
from stakeledger.projections.store import ViewStore
from stakeledger.projections.views import inbox as inbox_view
from stakeledger.projections.views.candles import CANDLES, bucket_start, check_interval
from stakeledger.projections.views.inbox import MESSAGES
from stakeledger.projections.views.markets import ARTIFACTS, ORDERS, RESTING
from stakeledger.projections.views.portfolio import POSITIONS, RISK_EVENTS
from stakeledger.projections.views.reputation import AGENTS, HISTORY
from stakeledger.projections.views.settlements import SETTLEMENTS
from stakeledger.projections.views.statements import ACCOUNTS, LINES
from stakeledger.projections.views.tape import TRADES

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 50


def price(wad: int | None) -> str | None:
    """A WAD price as a probability with six decimals: 625000000000000000 -> "0.625000"."""
    return None if wad is None else str((Decimal(int(wad)) / WAD).quantize(Decimal("0.000001")))


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def _strings(row: dict[str, Any], *amounts: str) -> dict[str, Any]:
    """The row with the named amount columns as decimal strings (None stays None)."""
    return {key: (str(value) if key in amounts and value is not None else value) for key, value in row.items()}


def _view_position(store: ViewStore, view: str) -> int:
    return store.positions().get(view, 0)


# Statements --------------------------------------------------------------------------------


def statement(store: ViewStore, account: str, *, at: int | None = None, limit: int = MAX_LIMIT) -> dict[str, Any]:
    """An account's movements with running balance, oldest first, up to log position ``at``
    (inclusive; default: everything applied). ``balance_units`` is the balance at ``at``:
    the balance on the last line at or before it. At most the ``limit`` latest lines."""
    _check_limit(limit)
    if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 0):
        raise InvalidInputError(f"--at must be a log position (a whole number, 0 or more), got {at!r}")
    with store.read():
        found = store.select(ACCOUNTS, "account = ?", (account,))
        if not found:
            raise UnknownAccountError(f"unknown account {account!r}")
        view_position = _view_position(store, "statements")
        if at is not None and at > view_position:
            raise InvalidInputError(
                f"log position {at} is beyond {view_position}, the last position the statements view holds"
            )
        until = view_position if at is None else at
        lines = store.select(
            LINES, "account = ? AND position <= ?", (account, until), order="position DESC", limit=limit
        )
        total = store.fetchone(
            "SELECT COUNT(*) FROM statement_lines WHERE account = ? AND position <= ?", (account, until)
        )
    lines.reverse()
    balance = lines[-1]["balance_units"] if lines else 0
    return {
        "account": account,
        "kind": found[0]["kind"],
        "at": at,
        "as_of_position": until,
        "view_position": view_position,
        "balance_units": str(balance),
        "lines_total": int(total[0]) if total else 0,
        "lines": [_strings(line, "delta_units", "balance_units") for line in lines],
    }


def balance_at(store: ViewStore, account: str, at: int) -> int:
    """The account's balance at log position ``at``: the last statement line at or before it."""
    with store.read():
        row = store.fetchone(
            "SELECT balance_units FROM statement_lines WHERE account = ? AND position <= ? ORDER BY position DESC LIMIT 1",
            (account, at),
        )
    return int(row[0]) if row else 0


def balances(store: ViewStore) -> list[dict[str, Any]]:
    """Every account with its kind and current balance, in the order they were opened."""
    with store.read():
        rows = store.select(ACCOUNTS, order="opened_position, account")
    return [
        {
            "account": r["account"],
            "kind": r["kind"],
            "balance_units": str(r["balance_units"]),
            "lines": r["lines"],
            "opened_position": r["opened_position"],
        }
        for r in rows
    ]


# Markets --------------------------------------------------------------------------------------


def _market(row: dict[str, Any]) -> dict[str, Any]:
    long_wad, short_wad = (
        prices_wad(row["q_long_units"], row["q_short_units"], row["b_units"]) if row["b_units"] else (None, None)
    )
    return {
        "artifact": row["artifact_id"],
        "title": row["title"],
        "group": row["group_name"],
        "state": row["state"],
        "liquidity_units": str(row["b_units"]),
        "min_hold_days": row["min_hold_days"],
        "listed_at": row["listed_at"],
        "q_long_units": str(row["q_long_units"]),
        "q_short_units": str(row["q_short_units"]),
        "price_long_wad": None if long_wad is None else str(long_wad),
        "price_long": price(long_wad),
        "price_short": price(short_wad),
        "pool_units": str(row["pool_units"]),
        "open_interest_units": str(row["q_long_units"] + row["q_short_units"]),
        "capital_committed_units": str(row["capital_committed_units"]),
        "live_positions": row["live_positions"],
        "positions": row["positions"],
        "resting_orders": row["resting_orders"],
        "order_escrow_units": str(row["order_escrow_units"]),
        "open_bounty_units": str(row["open_bounty_units"]),
        "transitions": row["transitions"],
        "settlement_price_wad": None if row["settlement_price_wad"] is None else str(row["settlement_price_wad"]),
        "settlement_price": None if row["settlement_price_wad"] is None else price(row["settlement_price_wad"]),
    }


def artifacts(store: ViewStore, *, by_capital: bool = False) -> list[dict[str, Any]]:
    """Every listed artifact; by default in listing order, or by capital committed (most first)."""
    with store.read():
        rows = store.select(ARTIFACTS, "listed_position IS NOT NULL", order="listed_position")
    markets = [_market(row) for row in rows]
    if by_capital:
        markets.sort(key=lambda m: (-int(m["capital_committed_units"]), m["artifact"]))
    return markets


def artifacts_by_capital(store: ViewStore) -> list[dict[str, Any]]:
    return artifacts(store, by_capital=True)


def _order(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "artifact": row["artifact_id"],
        "agent": row["agent"],
        "side": row["side"],
        "tokens_units": str(row["tokens_units"]),
        "remaining_units": str(row["remaining_units"]),
        "filled_units": str(row["filled_units"]),
        "limit_price_wad": str(row["limit_price_wad"]),
        "limit_price": price(row["limit_price_wad"]),
        "expires_at": row["expires_at"],
        "placed_at": row["placed_at"],
        "sequence": row["sequence"],
        "status": row["status"],
    }


def book(store: ViewStore, artifact: str) -> dict[str, Any]:
    """Prices, resting limit orders (best limit first, then oldest, per side) and the depth:
    the shares and cost that move the long price to 0.1 … 0.9 from where it stands."""
    with store.read():
        rows = _require_artifact(store, artifact)
        resting = store.select(ORDERS, "artifact_id = ? AND status IN (?, ?)", (artifact, *RESTING))
    market = _market(rows[0])
    resting.sort(key=lambda o: (o["side"], -o["limit_price_wad"], o["sequence"]))
    row = rows[0]
    levels = [
        {**level, "target_long": price(int(level["target_long_wad"]))}
        for level in depth(row["q_long_units"], row["q_short_units"], row["b_units"])
    ]
    return {**market, "orders": [_order(order) for order in resting], "depth": levels}


# Portfolio ------------------------------------------------------------------------------------


def _require_artifact(store: ViewStore, artifact: str) -> list[dict[str, Any]]:
    rows = store.select(ARTIFACTS, "artifact_id = ? AND listed_position IS NOT NULL", (artifact,))
    if not rows:
        raise UnknownArtifactError(f"unknown artifact {artifact!r}")
    return rows


def _require_agent(store: ViewStore, agent: str) -> None:
    if not store.select(ACCOUNTS, "account = ?", (agent,)):
        raise UnknownAccountError(f"unknown account {agent!r}")


def _rationale(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A position's rationale from the view, its integers as exact strings (docs/rationale.md)."""
    if not stored:
        return None
    shown: dict[str, Any] = {key: str(value) if isinstance(value, int) else value for key, value in stored.items()}
    if "features" in stored:
        shown["features"] = {name: str(value) for name, value in stored["features"].items()}
    return shown


def portfolio(store: ViewStore, agent: str) -> dict[str, Any]:
    """An agent's positions (live first, then newest), resting orders and totals. Live
    positions are marked at the market's current price: value = quantity × side price."""
    with store.read():
        _require_agent(store, agent)
        positions = store.select(POSITIONS, "owner = ?", (agent,), order="opened_position DESC")
        orders = store.select(ORDERS, "agent = ? AND status IN (?, ?)", (agent, *RESTING), order="placed_position")
        risk_events = store.select(RISK_EVENTS, "agent = ?", (agent,), order="position DESC", limit=DEFAULT_LIMIT)
        artifact_ids = sorted({p["artifact_id"] for p in positions if p["status"] in LIVE_STATUSES})
        markets = {}
        for artifact_id in artifact_ids:
            found = store.select(ARTIFACTS, "artifact_id = ?", (artifact_id,))
            if found and found[0]["b_units"]:
                m = found[0]
                markets[artifact_id] = prices_wad(m["q_long_units"], m["q_short_units"], m["b_units"])
    rows = []
    totals = {"cost_units": 0, "value_units": 0, "unrealized_pnl_units": 0, "realized_pnl_units": 0}
    for p in positions:
        live = p["status"] in LIVE_STATUSES
        value = unrealized = None
        if live and p["artifact_id"] in markets:
            long_wad, short_wad = markets[p["artifact_id"]]
            side_wad = long_wad if p["side"] == Side.LONG else short_wad
            value = p["quantity_units"] * side_wad // WAD
            unrealized = value - p["cost_units"]
            totals["cost_units"] += p["cost_units"]
            totals["value_units"] += value
            totals["unrealized_pnl_units"] += unrealized
        totals["realized_pnl_units"] += p["realized_pnl_units"]
        rows.append(
            {
                "position_id": p["position_id"],
                "artifact": p["artifact_id"],
                "side": p["side"],
                "status": p["status"],
                "quantity_units": str(p["quantity_units"]),
                "cost_units": str(p["cost_units"]),
                "entry_price_wad": str(p["entry_price_wad"]),
                "entry_price": price(p["entry_price_wad"]),
                "value_units": None if value is None else str(value),
                "unrealized_pnl_units": None if unrealized is None else str(unrealized),
                "realized_pnl_units": str(p["realized_pnl_units"]),
                "proceeds_units": str(p["proceeds_units"]),
                "payout_units": str(p["payout_units"]),
                "order_id": p["order_id"],
                "opened_at": p["opened_at"],
                "closed_at": p["closed_at"],
                "live": live,
                "rationale": _rationale(p["rationale"]),
            }
        )
    rows.sort(key=lambda r: not r["live"])  # stable: live first, each group newest first
    return {
        "agent": agent,
        "positions": rows,
        "orders": [_order(order) for order in orders],
        "risk_events": [{**_strings(event, "tokens_units"), "artifact": event["artifact_id"]} for event in risk_events],
        "live_positions": sum(1 for r in rows if r["live"]),
        "closed_positions": sum(1 for r in rows if not r["live"]),
        **{key: str(value) for key, value in totals.items()},
    }


# Settlements and reputation ----------------------------------------------------------------------


def settlement_history(
    store: ViewStore, *, artifact: str | None = None, agent: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """Settlements (and bounty payouts), newest first, optionally of one artifact and/or agent."""
    _check_limit(limit)
    clauses, params = [], []
    if artifact is not None:
        clauses.append("artifact_id = ?")
        params.append(artifact)
    if agent is not None:
        clauses.append("agent = ?")
        params.append(agent)
    with store.read():
        if artifact is not None:
            _require_artifact(store, artifact)  # an unknown filter is a mistake, not an empty history
        if agent is not None:
            _require_agent(store, agent)
        rows = store.select(SETTLEMENTS, " AND ".join(clauses), params, order="position DESC, agent", limit=limit)
    return [
        {
            **_strings(row, "price_long_wad", "quantity_units", "cost_units", "payout_units", "pnl_units"),
            "artifact": row["artifact_id"],
            "price_long": price(row["price_long_wad"]),
        }
        for row in rows
    ]


def _believability(wad: int) -> str:
    return str((Decimal(wad) / WAD).quantize(Decimal("0.0001")))


def reputation(
    store: ViewStore, agent: str | None = None, *, limit: int = MAX_LIMIT
) -> dict[str, Any] | list[dict[str, Any]]:
    """Without an agent: every agent's believability, highest first. With one: its
    believability now and each change, newest first, naming the settlement that caused it."""
    _check_limit(limit)
    with store.read():
        if agent is None:
            rows = store.select(AGENTS)
            rows.sort(key=lambda r: (-r["believability_wad"], r["agent"]))
            return [
                {
                    "agent": r["agent"],
                    "believability_wad": str(r["believability_wad"]),
                    "believability": _believability(r["believability_wad"]),
                    "predictions": r["predictions"],
                    "correct": r["correct"],
                    "updated_position": r["updated_position"],
                }
                for r in rows
            ]
        _require_agent(store, agent)
        found = store.select(AGENTS, "agent = ?", (agent,))
        history = store.select(HISTORY, "agent = ?", (agent,), order="position DESC", limit=limit)
    current = found[0] if found else None
    wad = current["believability_wad"] if current else REPUTATION_START_WAD
    return {
        "agent": agent,
        "believability_wad": str(wad),
        "believability": _believability(wad),
        "predictions": current["predictions"] if current else 0,
        "correct": current["correct"] if current else 0,
        "history": [
            {
                "position": h["position"],
                "at": h["at"],
                "position_id": h["position_id"],
                "artifact": h["artifact_id"],
                "transition": h["transition"],
                "correct": bool(h["correct"]),
                "stake_units": str(h["stake_units"]),
                "before_wad": str(h["before_wad"]),
                "after_wad": str(h["after_wad"]),
                "before": _believability(h["before_wad"]),
                "after": _believability(h["after_wad"]),
                "settlement": f"{h['artifact_id']} transition {h['transition']}, position {h['position_id']}",
                "reverted": bool(h.get("reverted")),
            }
            for h in history
        ],
    }


# Inbox --------------------------------------------------------------------------------------------


def inbox_message(row: dict[str, Any], decimals: int) -> str:
    """The readable text of one inbox notification."""

    def amount(units: int | None) -> str:
        return format_amount(units or 0, decimals)

    def signed(units: int | None) -> str:
        text = amount(units)
        return text if text.startswith("-") else f"+{text}"

    kind = row["kind"]
    subject = f"Your {row['side']} position {row['position_id']} on {row['artifact_id']}"
    if kind == inbox_view.SETTLED and row["state"] == "invalid":
        return (
            f"{subject} was refunded: the artifact was resolved invalid (N/A); paid {amount(row['payout_units'])}, "
            f"P&L {signed(row['pnl_units'])}."
        )
    if kind == inbox_view.SETTLED:
        return (
            f"{subject} settled: the artifact was {row['state']} at p(long) {price(row['price_long_wad'])}; "
            f"paid {amount(row['payout_units'])}, P&L {signed(row['pnl_units'])}."
        )
    if kind == inbox_view.PARTIALLY_SETTLED:
        return (
            f"{subject} was partly settled: the artifact was flagged; paid {amount(row['payout_units'])}, "
            f"P&L {signed(row['pnl_units'])}; the rest stays open."
        )
    if kind == inbox_view.FROZEN:
        return f"{subject} is frozen: the artifact was challenged. It cannot be closed until the challenge ends."
    if kind == inbox_view.REOPENED:
        return f"{subject} is open again: the challenge ended and the artifact trades again."
    if kind == inbox_view.SETTLEMENT_REVERSED:
        return (
            f"{subject} is {row['state'].replace('_', ' ')} again: the artifact's resolution was reopened and "
            f"its settlement reversed; the payout of {amount(-(row['payout_units'] or 0))} went back to the pool."
        )
    if kind == inbox_view.BOUNTY_PAYOUT:
        return f"You received {amount(row['payout_units'])} from bounty {row['bounty_id']} on {row['artifact_id']}."
    if kind == inbox_view.BOUNTY_REFUND:
        return f"Your bounty {row['bounty_id']} on {row['artifact_id']} was refunded: {amount(row['payout_units'])}."
    return f"{kind} on {row['artifact_id']}"


def inbox(store: ViewStore, agent: str, *, decimals: int, limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """The settlement notifications an agent received, newest first."""
    _check_limit(limit)
    with store.read():
        _require_agent(store, agent)
        rows = store.select(MESSAGES, "agent = ?", (agent,), order="position DESC", limit=limit)
    return [
        {
            **_strings(row, "price_long_wad", "payout_units", "pnl_units"),
            "artifact": row["artifact_id"],
            "message": inbox_message(row, decimals),
        }
        for row in rows
    ]


# Views themselves -------------------------------------------------------------------------------


def status(store: ViewStore, app: Any) -> list[dict[str, Any]]:
    """Per view: the last applied log position, the lag behind the log's head, row count."""
    runner = Runner(app, store)
    runner.prepare()
    return [_status_row(s) for s in runner.status()]


def _status_row(s: ViewStatus) -> dict[str, Any]:
    return {
        "view": s.view,
        "position": s.position,
        "head": s.head,
        "lag": s.lag,
        "rows": s.rows,
        "version": s.version,
        "needs_rebuild": s.needs_rebuild,
    }


# Price history and the trade tape ------------------------------------------------------------

CANDLES_DEFAULT_LIMIT = 1_000


def parse_since(text: str | None) -> datetime | None:
    """An ISO 8601 moment (``2026-12-03T10:00:00Z``; without an offset it is UTC), or INVALID_INPUT."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip()) if isinstance(text, str) and len(text) <= 64 else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInputError(f"since must be an ISO 8601 time such as 2026-12-03T10:00:00Z, got {text!r}")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def candles(
    store: ViewStore,
    artifact: str,
    interval: str,
    *,
    decimals: int,
    since: datetime | None = None,
    limit: int = CANDLES_DEFAULT_LIMIT,
) -> dict[str, Any]:
    """A market's candles at ``interval`` (1m, 5m, 1h, 1d), oldest first: the latest
    ``limit`` of them, from the bucket holding ``since`` when it is given."""
    seconds = check_interval(interval)
    _check_limit(limit)
    where, params = "artifact_id = ? AND span = ?", [artifact, interval]
    if since is not None:
        where += " AND bucket_start >= ?"
        params.append(bucket_start(since, seconds))
    with store.read():
        _require_artifact(store, artifact)
        rows = store.select(CANDLES, where, params, order="bucket_start DESC", limit=limit)
    rows.reverse()
    return {
        "artifact": artifact,
        "interval": interval,
        "candles": [
            {
                "start": row["bucket_start"],
                **{name: price(row[f"{name}_wad"]) for name in ("open", "high", "low", "close")},
                **{f"{name}_wad": str(row[f"{name}_wad"]) for name in ("open", "high", "low", "close")},
                "volume": format_amount(row["volume_units"], decimals),
                "volume_units": str(row["volume_units"]),
                "trades": row["trades"],
                "first_position": row["first_position"],
                "last_position": row["last_position"],
            }
            for row in rows
        ],
    }


def tape_trade(row: dict[str, Any], decimals: int) -> dict[str, Any]:
    """One tape row for people and programs: tokens and shares in the ledger's decimals
    beside their base units, prices with six decimals beside their WAD integers."""
    return {
        "position": row["position"],
        "at": row["at"],
        "artifact": row["artifact_id"],
        "side": row["side"],
        "kind": row["kind"],
        "tokens": format_amount(row["tokens_units"], decimals),
        "tokens_units": str(row["tokens_units"]),
        "shares": format_amount(row["shares_units"], decimals),
        "shares_units": str(row["shares_units"]),
        "price_before": price(row["price_before_wad"]),
        "price_after": price(row["price_after_wad"]),
        "price_before_wad": None if row["price_before_wad"] is None else str(row["price_before_wad"]),
        "price_after_wad": str(row["price_after_wad"]),
        "taker": row["taker"],
        "position_id": row["position_id"],
        "order_id": row["order_id"],
    }


def trades(
    store: ViewStore, artifact: str, *, decimals: int, limit: int = DEFAULT_LIMIT, before: int | None = None
) -> dict[str, Any]:
    """A market's trades, newest first, at most ``limit``, with log positions below
    ``before``. ``next_before`` is the position to pass for the next page (None at the end)."""
    _check_limit(limit)
    if before is not None and (isinstance(before, bool) or not isinstance(before, int) or before < 1):
        raise InvalidInputError(f"before must be a log position (a whole number, 1 or more), got {before!r}")
    where, params = "artifact_id = ?", [artifact]
    if before is not None:
        where += " AND position < ?"
        params.append(before)
    with store.read():
        _require_artifact(store, artifact)
        rows = store.select(TRADES, where, params, order="position DESC", limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "artifact": artifact,
        "trades": [tape_trade(row, decimals) for row in rows],
        "next_before": rows[-1]["position"] if more else None,
    }


# Portfolio at exit value (issue 15) ---------------------------------------------------------------


def portfolio_at_exit(store: ViewStore, agent: str, *, now: datetime) -> dict[str, Any]:
    """An agent's positions (live first, then newest), resting orders and totals, as
    ``portfolio`` but honest about what the agent could get now: a live position's value is
    what closing it now would pay (the pool's sell-back, rounded down: exit value), so its
    unrealised P&L right after a buy is minus the round trip; and an order past its expiry
    at ``now`` is no longer resting, its escrow counted as free (``expired_escrow_units``)
    whether or not its release has been written yet."""
    from stakeledger.domain.rules.risk.marks import exit_value_units

    data = portfolio(store, agent)
    with store.read():
        markets = {}
        for artifact_id in sorted({p["artifact"] for p in data["positions"] if p["live"]}):
            found = store.select(ARTIFACTS, "artifact_id = ?", (artifact_id,))
            if found:
                markets[artifact_id] = (found[0]["q_long_units"], found[0]["q_short_units"], found[0]["b_units"])
    totals = {"value_units": 0, "unrealized_pnl_units": 0}
    for row in data["positions"]:
        if not row["live"] or row["artifact"] not in markets:
            continue
        value = exit_value_units(*markets[row["artifact"]], row["side"], int(row["quantity_units"]))
        row["value_units"] = str(value)
        row["unrealized_pnl_units"] = str(value - int(row["cost_units"]))
        totals["value_units"] += value
        totals["unrealized_pnl_units"] += value - int(row["cost_units"])
    live, expired = [], []
    for order in data["orders"]:
        due = order["expires_at"] is not None and datetime.fromisoformat(order["expires_at"]) <= now
        (expired if due else live).append(order)
    return {
        **data,
        **{key: str(value) for key, value in totals.items()},
        "orders": live,
        "escrow_units": str(sum(int(o["remaining_units"]) for o in live)),
        "expired_escrow_units": str(sum(int(o["remaining_units"]) for o in expired)),
        "marked_at": "exit value",
    }
