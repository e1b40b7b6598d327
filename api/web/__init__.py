"""The web page served at /: markets, a market, an account and the auditor's view."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
