"""The closed set of domain errors.

Each error carries a stable ``code`` that the CLI prints; the HTTP API maps codes to
statuses in one table of its own (``stakeledger.api.errors``), so the domain knows no HTTP. Only bad input and impossible requests raise; an expected business outcome,
such as a risk-limit rejection, is recorded as an event instead.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refuses. Nothing was written."""

    code = "LEDGER_ERROR"


class InvalidAmountError(LedgerError, ValueError):
    code = "INVALID_AMOUNT"


class InvalidInputError(LedgerError, ValueError):
    code = "INVALID_INPUT"


class InvalidStoreUrlError(LedgerError, ValueError):
    code = "INVALID_STORE_URL"


class NotInitialisedError(LedgerError):
    code = "NOT_INITIALISED"


class AlreadyInitialisedError(LedgerError):
    code = "ALREADY_INITIALISED"


class UnknownAccountError(LedgerError, LookupError):
    code = "UNKNOWN_ACCOUNT"


class AccountExistsError(LedgerError):
    code = "ACCOUNT_EXISTS"


class SelfTransferError(LedgerError):
    code = "SELF_TRANSFER"


class InsufficientFundsError(LedgerError):
    code = "INSUFFICIENT_FUNDS"


class CommandConflictError(LedgerError):
    """The same client command id was used before with a different payload."""

    code = "IDEMPOTENCY_MISMATCH"


class ConcurrencyError(LedgerError):
    """Other writers kept winning the race for the same aggregates; retry later."""

    code = "CONCURRENCY_CONFLICT"


class UnknownArtifactError(LedgerError, LookupError):
    code = "UNKNOWN_ARTIFACT"


class ArtifactExistsError(LedgerError):
    code = "ARTIFACT_EXISTS"


class UnknownPositionError(LedgerError, LookupError):
    code = "UNKNOWN_POSITION"


class UnknownOrderError(LedgerError, LookupError):
    code = "UNKNOWN_ORDER"


class UnknownBountyError(LedgerError, LookupError):
    code = "UNKNOWN_BOUNTY"


class SlippageError(LedgerError):
    code = "SLIPPAGE_EXCEEDED"


class StateError(LedgerError):
    """The aggregate is in a state where this command is not allowed."""

    code = "STATE_CONFLICT"


class FrozenError(StateError):
    """The artifact is challenged: its positions and orders are frozen."""

    code = "FROZEN"


class HoldPeriodError(StateError):
    code = "MIN_HOLD_NOT_REACHED"


class NotOwnerError(LedgerError):
    code = "NOT_OWNER"


class SupplyLimitError(InvalidAmountError):
    """A mint, transfer or payout would take the total supply, or one balance, above
    2**256 - 1 base units: every amount must map onto a uint256 unchanged."""


class ClockBehindError(LedgerError):
    """The writer's clock reads earlier than the last event of an aggregate the command
    would change: saving would put that aggregate's history out of time order."""

    code = "CLOCK_BEHIND"


class TornReadError(ConcurrencyError):
    """A system account (a pool or an escrow) would go negative. The ledger never lets
    that happen on a consistent view, so the command read its aggregates at different
    moments, around another writer's commit; it is decided again on fresh state."""


class ThresholdNotMetError(StateError):
    """The settlement price misses the market's threshold for the transition asked for
    (validated needs at least its bound, deprecated at most, flagged below)."""

    code = "THRESHOLD_NOT_MET"


class CorrectionWindowClosedError(StateError):
    """A reopen asked for after the market's correction window, or of a resolution that cannot be reopened."""

    code = "CORRECTION_WINDOW_CLOSED"


class ReversalNotCoveredError(StateError):
    """A reopen would take back more than some accounts now hold: it names them, and writes nothing."""

    code = "REVERSAL_NOT_COVERED"
