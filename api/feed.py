"""The live feed of the log: Server-Sent Events at /api/stream and a WebSocket at /api/ws."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
