"""The words every layer shares, each defined once: units, sides, lifecycle states, limits
on batches, and the reason codes of token movements.

These are part of the stored format and of the EVM export: a reason code or a state,
once written, is read back by every replay, so none of them is ever renamed.
"""

from __future__ import annotations

import re
from enum import StrEnum

# Prices and probabilities are integers scaled by 10**18 ("wad"), whatever the ledger's decimals.
WAD = 10**18
# A ledger's fractional digits, fixed at `init`: 18 is the ERC-20 convention.
DEFAULT_DECIMALS = 18
MAX_DECIMALS = 36
# Every balance and the total supply fit a uint256, so the EVM export maps them unchanged.
UINT256_MAX = 2**256 - 1


class Side(StrEnum):
    """The side of a binary market a trade buys or sells."""

    LONG = "long"
    SHORT = "short"


# An artifact's lifecycle. listed -> anything; flagged/challenged -> listed or another
# non-listed state; validated, deprecated and invalid (N/A: the question is void, every
# stake goes back) are terminal.
LISTED, FLAGGED, CHALLENGED, VALIDATED, DEPRECATED = "listed", "flagged", "challenged", "validated", "deprecated"
INVALID = "invalid"
STATES = (LISTED, FLAGGED, CHALLENGED, VALIDATED, DEPRECATED, INVALID)
TERMINAL_STATES = (VALIDATED, DEPRECATED, INVALID)
TRADABLE_STATES = (LISTED, FLAGGED)

# Limits on one command, so one request can never hold the store for long.
MAX_BATCH_TRANSFERS = 10_000
MAX_BATCH_ORDERS = 1_000


class Reason(StrEnum):
    """Why tokens moved: every posting names one, and reports, the audit and the export key on it."""

    MINT = "mint"
    BURN = "burn"
    TRANSFER = "transfer"
    TRADE_OPEN = "trade:open"
    TRADE_CLOSE = "trade:close"
    ORDER_ESCROW = "order:escrow"
    ORDER_RELEASE = "order:release"
    SETTLEMENT_PROFIT = "settlement:profit"
    SETTLEMENT_LOSS = "settlement:loss"
    SETTLEMENT_PARTIAL = "settlement:partial"
    SETTLEMENT_REFUND = "settlement:refund"  # an invalid (N/A) market hands each stake back
    SETTLEMENT_REVERSAL = "settlement:reversal"  # a reopened resolution takes a payout back to the pool
    AMM_SUBSIDY = "amm:subsidy"
    AMM_TAX = "amm:tax"
    AMM_SUBSIDY_REVERSAL = "amm:subsidy_reversal"  # a reopen returns what the resolution minted
    AMM_TAX_REVERSAL = "amm:tax_reversal"  # a reopen puts back what the resolution returned
    BOUNTY_FUND = "bounty:fund"
    BOUNTY_PAYOUT = "bounty:payout"
    BOUNTY_REFUND = "bounty:refund"
    TRADE_FEE = "trade:fee"  # a market's trade fee, paid by the trader to sys:fees


# An agent may label its own transfers: "transfer:rent". Every other code is the ledger's.
_USER_TRANSFER_REASON = re.compile(r"^transfer(:[a-z0-9_\-]{1,40})?\Z")


def is_user_transfer_reason(text: str) -> bool:
    return isinstance(text, str) and _USER_TRANSFER_REASON.match(text) is not None


def reason_code(text: str) -> str:
    """The stored reason: a Reason, or a user's labelled transfer. Anything else is a bug."""
    if is_user_transfer_reason(text):
        return str(text)
    return Reason(text).value
