"""Loading the aggregates a decision needs, by their public ids, with one clear error each."""

from __future__ import annotations

from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import UnknownArtifactError, UnknownPositionError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.artifacts import Artifact, artifact_of, artifact_uuid, check_artifact_id
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
