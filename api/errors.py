"""One table from refusals to HTTP statuses, and one error body: ``{"error": CODE, "message": ...}``.

- a ``LedgerError`` answers with its stable ``code`` and the status ``STATUS_BY_CODE``
  gives it (400/422 bad input, 401 no or unknown key, 403 wrong agent or scope, 404
  unknown id, 409 FROZEN, state conflicts and idempotency mismatches);
- a request that does not match the schema answers 422 ``INVALID_INPUT``, with details;
- an unknown route or method answers 404 ``NOT_FOUND`` / 405 ``METHOD_NOT_ALLOWED``;
- a store that cannot be reached answers 503 ``STORE_UNAVAILABLE`` (retry later);
- anything else is a bug: 500 ``INTERNAL_ERROR``, logged with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import DataError as StoreDataError
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from stakeledger.api.inputs import TEXT_PATTERN, check_text
from stakeledger.domain.errors import InvalidInputError, LedgerError

logger = logging.getLogger("stakeledger.api")

MAX_DETAILS = 20

# Every refusal code the ledger raises, and the status it answers with over HTTP. A test
# walks every LedgerError subclass and fails on a code missing here.
STATUS_BY_CODE = {
    "LEDGER_ERROR": 400,
    "INVALID_STORE_URL": 400,
    "INVALID_AMOUNT": 422,
    "INVALID_INPUT": 422,
    "INVALID_INTERVAL": 422,
    "INVALID_TOPIC": 422,
    "SELF_TRANSFER": 422,
    "INVALID_SIGNING_KEY": 422,
    "EXPORT_INVALID": 422,
    "INVALID_BACKTEST": 422,  # stakeledger backtest (agents/backtest.py): no HTTP route yet
    "STRATEGY_FAILED": 422,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_OWNER": 403,
    "UNKNOWN_ACCOUNT": 404,
    "UNKNOWN_ARTIFACT": 404,
    "UNKNOWN_POSITION": 404,
    "UNKNOWN_ORDER": 404,
    "UNKNOWN_BOUNTY": 404,
    "UNKNOWN_KEY": 404,
    "NOT_INITIALISED": 409,
    "ALREADY_INITIALISED": 409,
    "ACCOUNT_EXISTS": 409,
    "ARTIFACT_EXISTS": 409,
    "INSUFFICIENT_FUNDS": 409,
    "IDEMPOTENCY_MISMATCH": 409,
    "CONCURRENCY_CONFLICT": 409,
    "SLIPPAGE_EXCEEDED": 409,
    "STATE_CONFLICT": 409,
    "FROZEN": 409,
    "MIN_HOLD_NOT_REACHED": 409,
    "THRESHOLD_NOT_MET": 409,
    "CORRECTION_WINDOW_CLOSED": 409,
    "REVERSAL_NOT_COVERED": 409,
    "CLOCK_BEHIND": 409,
    "EXPORT_ERROR": 409,
    "IMPORT_TARGET_NOT_EMPTY": 409,
    "IMPORT_FAILED": 409,
}


def http_status_for(error: LedgerError) -> int:
    """The status of a refusal, by its code; a code the table lacks is a plain 400."""
    return STATUS_BY_CODE.get(error.code, 400)


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class ErrorDetail(BaseModel):
    location: str
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every refusal has this shape."""

    error: str = Field(description="A stable code, e.g. INVALID_AMOUNT, UNAUTHENTICATED, FROZEN.", examples=["FROZEN"])
    message: str = Field(description="What was wrong, for people.")
    details: list[ErrorDetail] | None = Field(default=None, description="Schema violations, for 422 INVALID_INPUT.")
    rejection: dict[str, Any] | None = Field(default=None, description="A risk rejection's reason and context.")


def _error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": code, "message": message, **{key: value for key, value in extra.items() if value is not None}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(error: LedgerError) -> JSONResponse:
    status = http_status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _error(status, error.code, str(error), headers=headers)


def _ledger_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, LedgerError)
    return error_response(error)


def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = []
    for item in error.errors()[:MAX_DETAILS]:
        location = ".".join(str(part) for part in item.get("loc", ()))
        details.append({"location": location, "message": _message(item, location), "type": str(item.get("type", ""))})
    first = details[0] if details else {"location": "request", "message": "invalid request"}
    return _error(422, "INVALID_INPUT", f"{first['location']}: {first['message']}", details=details)


def _message(item: dict[str, Any], location: str) -> str:
    """Pydantic's message, except for free text with a control character: which one, and where
    (rather than the character class of ``TEXT_PATTERN``)."""
    value = item.get("input")
    if item.get("ctx", {}).get("pattern") == TEXT_PATTERN and isinstance(value, str):
        try:
            check_text(value, location)
        except InvalidInputError as refusal:
            return str(refusal).removeprefix(f"{location} ")
    return str(item.get("msg", ""))


def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "BAD_REQUEST" if error.status_code < 500 else "INTERNAL_ERROR")
    return _error(error.status_code, code, str(error.detail), headers=getattr(error, "headers", None))


def _store_error(_: Request, error: Exception) -> JSONResponse:
    if isinstance(error, StoreDataError):
        # The database refused a value: the edge should have refused it first, so log it.
        logger.warning("the store refused a value: %s", error)
        return _error(422, "INVALID_INPUT", "the store refused a value in this request")
    logger.error("store error: %s", error)
    return _error(503, "STORE_UNAVAILABLE", "the store is unavailable or overloaded; retry later")


def _view_store_error(_: Request, error: Exception) -> JSONResponse:
    """The views' own connections (plain psycopg or sqlite3) fail the same two ways."""
    import psycopg

    if isinstance(error, psycopg.DataError):
        logger.warning("the view store refused a value: %s", error)
        return _error(422, "INVALID_INPUT", "the store refused a value in this request")
    logger.error("view store error: %s", error)
    return _error(503, "STORE_UNAVAILABLE", "the store is unavailable or overloaded; retry later")


def _unexpected(_: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=error)
    return _error(500, "INTERNAL_ERROR", "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PersistenceError, _store_error)
    import sqlite3

    import psycopg

    for error_class in (psycopg.DataError, psycopg.OperationalError, sqlite3.OperationalError):
        app.add_exception_handler(error_class, _view_store_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a route can answer with."""
    text = {
        400: "Bad input",
        401: "Missing, malformed, unknown or revoked key",
        403: "Wrong agent or scope",
        404: "Unknown id",
        409: "Frozen, state conflict, risk rejection or idempotency mismatch",
        422: "Bad input",
        503: "Store unavailable",
    }
    return {status: {"model": ErrorBody, "description": text[status]} for status in (*statuses, 422, 503)}
