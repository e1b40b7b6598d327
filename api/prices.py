"""Price history and the trade tape over HTTP: candles and trades per market (public).

    GET /api/market/artifacts/{id}/candles?interval=1h&since=ISO&limit=N   oldest first
    GET /api/market/artifacts/{id}/trades?limit=50&before=POSITION         newest first

Both read projection views (``candles``, ``tape``), caught up first like every read.
An unknown artifact answers 404 UNKNOWN_ARTIFACT, an unknown interval 422
INVALID_INTERVAL, a limit or position out of range 422 INVALID_INPUT.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Path, Query

from stakeledger.api.errors import responses
from stakeledger.api.models import NAME_PATTERN
from stakeledger.api.state import State
from stakeledger.projections import queries
from stakeledger.projections.views.candles import INTERVALS

router = APIRouter(prefix="/api/market", tags=["market"])

ArtifactPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Artifact id.")]


@router.get(
    "/artifacts/{artifact}/candles",
    responses=responses(404),
    summary="Price history: open/high/low/close of p(long), volume and trade count per bucket, oldest first",
)
def candles(
    artifact: ArtifactPath,
    state: State,
    interval: Annotated[str, Query(max_length=8, description=f"Bucket length: {', '.join(INTERVALS)}.")] = "1h",
    since: Annotated[
        Optional[str],
        Query(max_length=64, description="ISO 8601 time: candles from the bucket holding it (UTC if no offset)."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=queries.MAX_LIMIT, description="At most this many candles (the latest).")
    ] = queries.CANDLES_DEFAULT_LIMIT,
) -> dict[str, Any]:
    moment = queries.parse_since(since)
    queries.check_interval(interval)
    with state.views() as store:
        return queries.candles(store, artifact, interval, decimals=state.decimals, since=moment, limit=limit)


@router.get(
    "/artifacts/{artifact}/trades",
    responses=responses(404),
    summary="The trade tape: time, side, tokens, shares, price before and after, taker; newest first",
)
def trades(
    artifact: ArtifactPath,
    state: State,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="At most this many trades.")] = 50,
    before: Annotated[
        Optional[int],
        Query(ge=1, le=2**62, description="Only trades at log positions below this (the previous page's next_before)."),
    ] = None,
) -> dict[str, Any]:
    with state.views() as store:
        return queries.trades(store, artifact, decimals=state.decimals, limit=limit, before=before)
