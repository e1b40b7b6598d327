"""A limit on request bodies: every body the API accepts is small (the largest, a bounty
distribution to 1,000 claimants, is about 100 KB), so anything above ``MAX_BODY_BYTES``
is refused with 413 before it is read into memory."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

MAX_BODY_BYTES = 1 << 20


def _refusal(max_bytes: int) -> JSONResponse:
    return JSONResponse(
        {"error": "PAYLOAD_TOO_LARGE", "message": f"request bodies are at most {max_bytes} bytes"}, status_code=413
    )


class BodyLimit:
    """Pure ASGI middleware: checks Content-Length up front, and counts chunked bodies."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _refusal(self.max_bytes)(scope, receive, send)
                return
        received = 0
        too_large = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # End the body with a byte no JSON document may hold, so whatever was
                    # read cannot parse and no command runs; the answer becomes the 413.
                    too_large = True
                    return {"type": "http.request", "body": b"\x00", "more_body": False}
            return message

        async def limited_send(message: dict[str, Any]) -> None:
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await _refusal(self.max_bytes)(scope, receive, send)

        await self.app(scope, limited_receive, limited_send)
