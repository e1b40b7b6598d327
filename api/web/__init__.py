"""The web page served at /: markets, a market, an account and the auditor's view.

One static page (``static/index.html``) with a little script (``static/app.js``) that
reads and writes through the same JSON API as every other client, under hash routes:
``#/`` markets, ``#/market/ID``, ``#/account`` and ``#/auditor``. The chart library and
the keccak256 bundle are built into ``static/vendor/`` by ``make web-assets``; nothing is
loaded from elsewhere. The JSON the page needs beyond the rest of the API is in
``endpoints``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from stakeledger.api.web import endpoints

STATIC = Path(__file__).resolve().parent / "static"
# What the page serves, by suffix; anything else under static/ is not served.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# The page may load scripts, styles and data from this server only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter()
router.include_router(endpoints.router)


def _file(path: Path) -> FileResponse:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return _file(STATIC / "index.html")


@router.get("/static/{name:path}", include_in_schema=False)
def static(name: str) -> FileResponse:
    """A file of the page, by its path under static/: no way out of the folder, no hidden
    files, only the suffixes the page uses. Anything else is 404 NOT_FOUND."""
    candidate = (STATIC / name).resolve()
    inside = candidate.is_relative_to(STATIC) and not any(part.startswith(".") for part in Path(name).parts)
    if not inside or candidate.suffix not in MEDIA_TYPES or not candidate.is_file():
        raise HTTPException(status_code=404, detail=f"no file {name!r} in the page's static folder")
    return _file(candidate)
