"""Token statements: every movement on every account with its running balance.

The point-in-time balance of an account at log position P is the balance on its last
statement line at or before P (zero before its first line), so ``--at`` needs one
indexed lookup instead of a replay.
"""

from __future__ import annotations

from typing import Any

from stakeledger.domain.model.accounts import Account
from stakeledger.projections.store import AMOUNT, INT, JSON, TEXT, UUID, Rows, Table, encode_json, uuid_text
from stakeledger.projections.views.base import View, handles, iso

ACCOUNTS = Table(
    "statement_accounts",
    columns=(
        ("aggregate_id", UUID),
        ("account", TEXT),
        ("kind", TEXT),
        ("balance_units", AMOUNT),
        ("lines", INT),
        ("opened_at", TEXT),
        ("opened_position", INT),
        ("last_position", INT),
    ),
    key=("aggregate_id",),
    unique=(("account",),),
)
LINES = Table(
    "statement_lines",
    columns=(
        ("position", INT),
        ("account", TEXT),
        ("at", TEXT),
        ("transfer_id", TEXT),
        ("reason", TEXT),
        ("counterparty", TEXT),
        ("delta_units", AMOUNT),
        ("balance_units", AMOUNT),
        ("refs", JSON),
    ),
    key=("position",),
    indexes=(("account", "position"),),
)


_REFS_MEMO: dict[tuple[tuple[str, str], ...], str] = {}


def encode_refs(refs: dict[str, str]) -> str:
    """A transfer's references as JSON. Both sides of a transfer carry the same refs, so
    the last few thousand encodings are remembered."""
    if not refs:
        return "{}"
    key = tuple(refs.items())
    text = _REFS_MEMO.get(key)
    if text is None:
        if len(_REFS_MEMO) >= 4_096:
            _REFS_MEMO.clear()
        text = _REFS_MEMO[key] = encode_json(refs)
    return text


class StatementsView(View):
    name = "statements"
    version = 1
    tables = (ACCOUNTS, LINES)

    @handles(Account.Opened)
    def opened(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            "statement_accounts",
            {
                "aggregate_id": event.originator_id.int,
                "account": event.account_id,
                "kind": event.kind,
                "balance_units": 0,
                "lines": 0,
                "opened_at": iso(event.timestamp),
                "opened_position": position,
                "last_position": position,
            },
        )

    @handles(Account.Debited, Account.Credited)
    def moved(self, rows: Rows, position: int, event: Any) -> None:
        aggregate_id = event.originator_id.int
        account = rows.update("statement_accounts", aggregate_id)
        if account is None:
            # A movement on an account that was never opened: the audit reports it; the
            # statement still shows it, under the aggregate's id.
            account = {
                "aggregate_id": aggregate_id,
                "account": f"aggregate:{uuid_text(aggregate_id)}",
                "kind": "unknown",
                "balance_units": 0,
                "lines": 0,
                "opened_at": None,
                "opened_position": None,
                "last_position": position,
            }
            rows.put("statement_accounts", account)
        delta = event.amount_units if type(event) is Account.Credited else -event.amount_units
        balance = account["balance_units"] + delta
        account["balance_units"] = balance
        account["lines"] += 1
        account["last_position"] = position
        # Most events of a ledger are these: the line goes straight to stored form, in
        # LINES column order (amounts as decimal text, refs as JSON).
        rows.append_encoded(
            "statement_lines",
            (
                position,
                account["account"],
                iso(event.timestamp),
                event.transfer_id,
                event.reason,
                event.counterparty,
                str(delta),
                str(balance),
                encode_refs(event.refs),
            ),
        )
