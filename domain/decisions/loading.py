"""Loading the aggregates a decision needs, by their public ids, with one clear error each."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import LedgerError, UnknownArtifactError, UnknownPositionError
from stakeledger.domain.model.accounts import FEES, account_uuid, agent_account_id, pool_account_id
from stakeledger.domain.model.artifacts import Artifact, artifact_of, artifact_uuid, check_artifact_id
from stakeledger.domain.model.portfolio import portfolio_uuid
from stakeledger.domain.model.positions import Position, position_uuid


def load_artifact(unit: UnitOfWork, artifact_id: str) -> Artifact:
    artifact = unit.find(artifact_uuid(check_artifact_id(artifact_id)), Artifact)
    if artifact is None:
        raise UnknownArtifactError(f"unknown artifact {artifact_id!r}")
    return artifact


def load_position(unit: UnitOfWork, position_id: str) -> Position:
    artifact_of(position_id)
    position = unit.find(position_uuid(position_id), Position)
    if position is None:
        raise UnknownPositionError(f"unknown position {position_id!r}")
    return position


def require_agent(unit: UnitOfWork, agent: str) -> str:
    account_id = agent_account_id(agent)
    unit.account(account_id)  # raises UnknownAccountError for an agent never opened
    return account_id


def prefetch_trades(unit: UnitOfWork, trades: Iterable[tuple[str, str]]) -> None:
    """Bring what trades of (agent, artifact id) read up to date in one query: each agent's
    account and portfolio, each market and its pool, and the fees account (UnitOfWork.prefetch).
    A name that is not valid is skipped here: the load that follows refuses it with its own message."""
    ids: list[UUID] = []
    for agent, artifact_id in trades:
        if (agent, artifact_id) in unit.prefetched:
            continue  # a batch prefetches all its trades before the first runs
        unit.prefetched.add((agent, artifact_id))
        try:
            account_id, market = agent_account_id(agent), check_artifact_id(artifact_id)
        except LedgerError:
            continue
        ids += [
            account_uuid(account_id),
            portfolio_uuid(agent),
            artifact_uuid(market),
            account_uuid(pool_account_id(market)),
        ]
    if ids:
        unit.prefetch([*ids, account_uuid(FEES)])
