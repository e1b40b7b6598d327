"""The closed set of domain errors.

Each error carries a stable ``code`` that the CLI prints and the HTTP API maps to a
status. Only bad input and impossible requests raise; an expected business outcome,
such as a risk-limit rejection, is recorded as an event instead.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refuses. Nothing was written."""

    code = "LEDGER_ERROR"
    http_status = 400


class InvalidAmountError(LedgerError, ValueError):
    code = "INVALID_AMOUNT"
    http_status = 422


class InvalidInputError(LedgerError, ValueError):
    code = "INVALID_INPUT"
    http_status = 422


class InvalidStoreUrlError(LedgerError, ValueError):
    code = "INVALID_STORE_URL"


class NotInitialisedError(LedgerError):
    code = "NOT_INITIALISED"
    http_status = 409


class AlreadyInitialisedError(LedgerError):
    code = "ALREADY_INITIALISED"
    http_status = 409


class UnknownAccountError(LedgerError, LookupError):
    code = "UNKNOWN_ACCOUNT"
    http_status = 404


class AccountExistsError(LedgerError):
    code = "ACCOUNT_EXISTS"
    http_status = 409


class SelfTransferError(LedgerError):
    code = "SELF_TRANSFER"
    http_status = 422


class InsufficientFundsError(LedgerError):
    code = "INSUFFICIENT_FUNDS"
    http_status = 409


class CommandConflictError(LedgerError):
    """The same client command id was used before with a different payload."""

    code = "IDEMPOTENCY_MISMATCH"
    http_status = 409


class ConcurrencyError(LedgerError):
    """Other writers kept winning the race for the same aggregates; retry later."""

    code = "CONCURRENCY_CONFLICT"
    http_status = 409


class UnknownArtifactError(LedgerError, LookupError):
    code = "UNKNOWN_ARTIFACT"
    http_status = 404


class ArtifactExistsError(LedgerError):
    code = "ARTIFACT_EXISTS"
    http_status = 409


class UnknownPositionError(LedgerError, LookupError):
    code = "UNKNOWN_POSITION"
    http_status = 404


class UnknownOrderError(LedgerError, LookupError):
    code = "UNKNOWN_ORDER"
    http_status = 404


class UnknownBountyError(LedgerError, LookupError):
    code = "UNKNOWN_BOUNTY"
    http_status = 404


class SlippageError(LedgerError):
    code = "SLIPPAGE_EXCEEDED"
    http_status = 409


class StateError(LedgerError):
    """The aggregate is in a state where this command is not allowed."""

    code = "STATE_CONFLICT"
    http_status = 409


class FrozenError(StateError):
    """The artifact is challenged: its positions and orders are frozen."""

    code = "FROZEN"
    http_status = 409


class HoldPeriodError(StateError):
    code = "MIN_HOLD_NOT_REACHED"


class NotOwnerError(LedgerError):
    code = "NOT_OWNER"
    http_status = 403
