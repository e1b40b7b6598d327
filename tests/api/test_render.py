"""Rendering a result: plain JSON goes out as it is; anything else through FastAPI's encoder,
with the same bytes either way, and a human twin beside every base-unit and WAD value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from stakeledger.api.render import human, respond
from stakeledger.domain.vocabulary import Side

RESULT = {
    "position": "ART-1/p1",
    "side": Side.LONG,
    "cost_units": "1500000",
    "price_long_wad": "500000000000000000",
    "fills": [{"order": "o-1", "shares_units": 2_000_000, "note": None}],
    "ids": ("a", "b"),
}


def test_respond_when_the_result_is_plain_json_then_the_bytes_equal_the_encoders():
    response = respond(RESULT, 6, 201)
    assert response.status_code == 201
    assert response.body == JSONResponse(jsonable_encoder(human(RESULT, 6))).body
    body = json.loads(response.body)
    assert body["cost"] == "1.5" and body["price_long"] == "0.500000" and body["side"] == "long"
    assert body["fills"][0]["shares"] == "2" and body["ids"] == ["a", "b"]


def test_respond_when_the_result_holds_values_json_cannot_carry_then_the_encoder_renders_them():
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    response = respond({"at": at, "amount": Decimal("1.25"), "tags": {"x"}}, 6)
    assert json.loads(response.body) == {"at": at.isoformat(), "amount": 1.25, "tags": ["x"]}
