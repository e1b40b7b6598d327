"""Health, the audit and the projection views' status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stakeledger.api.errors import responses
from stakeledger.api.models import AuditOut, Health
from stakeledger.api.render import human
from stakeledger.api.state import Caller, State
from stakeledger.domain.service.log import max_position
from stakeledger.projections import queries
from stakeledger.projections.audit import audit as run_audit

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness and the store's reachability")
def healthz(state: State) -> Any:
    ledger = state.ledger
    initialised = ledger.is_initialised()
    return {
        "status": "ok",
        "initialised": initialised,
        "log_position": max_position(ledger),
        "decimals": ledger.decimals if initialised else None,
    }


@router.get(
    "/api/audit",
    response_model=AuditOut,
    responses=responses(401, 403),
    summary="Replay the whole log and check every invariant (admin)",
)
def audit(caller: Caller, state: State) -> Any:
    """Admin only: it replays the whole log, so anyone could otherwise keep a worker busy."""
    caller.require_admin("the audit")
    report = run_audit(state.ledger)
    return human(
        {
            "clean": report.clean,
            "events": report.events,
            "last_position": report.last_position,
            "accounts": report.accounts,
            "transfers": report.transfers,
            "total_supply_units": str(report.total_supply_units),
            "seconds": round(report.seconds, 3),
            "violation_count": report.violation_count,
            "violations": [str(v) for v in report.violations],
            "findings": [v.to_dict() for v in report.violations],
        },
        state.decimals,
    )


@router.get("/api/projections", summary="Per view: last applied log position, lag behind the log, rows")
def projections_status(state: State) -> list[dict[str, Any]]:
    return queries.status(state.store(), state.ledger)
