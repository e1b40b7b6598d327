"""Price history and the trade tape over HTTP (candles and trades per market)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
