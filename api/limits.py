"""Limits on request bodies, checked on the raw bytes before FastAPI parses anything.

- A body over ``MAX_BODY_BYTES`` (1 MiB) is refused with 413 ``PAYLOAD_TOO_LARGE``: by its
  Content-Length before it is read, or as soon as a chunked body grows past it. Every body
  the API accepts is small (the largest, a bounty distribution to 1,000 claimants, is
  about 100 KB).
- A body nesting deeper than ``MAX_JSON_DEPTH`` (32) levels, or holding a number of more
  than ``MAX_NUMBER_DIGITS`` (100) digits, or an object that names a key twice, is refused
  with 422 ``INVALID_INPUT`` (see ``api.inputs``). The deepest body the API accepts nests 3
  levels. Python's JSON parser recurses once per level: 200,000 levels would end in a
  RecursionError (or, with a raised recursion limit, kill the worker process), and a
  5,000-digit number in Python's int-conversion limit.

No request refused here reaches a route, so none writes anything.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from stakeledger.api.inputs import FORBIDDEN_TEXT, check_json_shape, decode_json_bytes, reject_duplicate_keys
from stakeledger.domain.errors import InvalidInputError

MAX_BODY_BYTES = 1 << 20


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse(
        {"error": "PAYLOAD_TOO_LARGE", "message": f"request bodies are at most {max_bytes} bytes"}, status_code=413
    )


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"error": "INVALID_INPUT", "message": message}, status_code=422)


def check_body(body: bytes) -> None:
    """InvalidInputError when ``body`` is JSON that nests too deep, holds too long a number
    or names a key twice. A body that is not JSON passes: the route refuses it as before."""
    text = decode_json_bytes(body)
    if text is None:
        return
    check_json_shape(text, "the request body")
    try:
        json.loads(text, object_pairs_hook=reject_duplicate_keys)
    except InvalidInputError as error:  # first: an InvalidInputError is a ValueError too
        raise InvalidInputError(f"the request body has a {error}") from None
    except ValueError:  # not JSON (JSONDecodeError is a ValueError): FastAPI's answer stands
        return


class BodyLimit:
    """Pure ASGI middleware: reads the whole body (at most ``max_bytes``), checks it, then
    hands the same bytes to the application."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if FORBIDDEN_TEXT.search(scope.get("path", "")):
            # Routing matches path parameters with ``$``, which also matches before a trailing
            # newline: "ART-1%2Fo1%0A" would reach the route as "ART-1/o1". No id, name or code
            # holds a control character, so such a path names nothing.
            await _invalid("the request path holds a control or invisible character")(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or len(value) > 19 or int(value) > self.max_bytes):
                await _too_large(self.max_bytes)(scope, receive, send)
                return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                check_body(body)
            except InvalidInputError as error:
                await _invalid(str(error))(scope, receive, send)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
