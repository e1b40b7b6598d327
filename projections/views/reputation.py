"""Reputation: every agent's believability now, and each change with the settlement
that caused it (the position, its artifact and the transition number, which match a
``settled`` row of the settlements view)."""

from __future__ import annotations

from typing import Any

from stakeledger.domain.model.reputation import Reputation
from stakeledger.projections.store import AMOUNT, INT, TEXT, UUID, Rows, Table
from stakeledger.projections.views.base import View, handles, iso

AGENTS = Table(
    "reputation_agents",
    columns=(
        ("aggregate_id", UUID),
        ("agent", TEXT),
        ("believability_wad", AMOUNT),
        ("predictions", INT),
        ("correct", INT),
        ("started_at", TEXT),
        ("updated_at", TEXT),
        ("updated_position", INT),
    ),
    key=("aggregate_id",),
    unique=(("agent",),),
)
HISTORY = Table(
    "reputation_history",
    columns=(
        ("position", INT),
        ("agent", TEXT),
        ("position_id", TEXT),
        ("artifact_id", TEXT),
        ("transition", INT),
        ("correct", INT),
        ("stake_units", AMOUNT),
        ("before_wad", AMOUNT),
        ("after_wad", AMOUNT),
        ("at", TEXT),
        ("reverted", INT),
    ),
    key=("position",),
    indexes=(("agent", "position"),),
)


class ReputationView(View):
    name = "reputation"
    version = 2
    tables = (AGENTS, HISTORY)

    @handles(Reputation.Started)
    def started(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            "reputation_agents",
            {
                "aggregate_id": event.originator_id.int,
                "agent": event.agent,
                "believability_wad": event.believability_wad,
                "predictions": 0,
                "correct": 0,
                "started_at": iso(event.timestamp),
                "updated_at": iso(event.timestamp),
                "updated_position": position,
            },
        )

    @handles(Reputation.Adjusted)
    def adjusted(self, rows: Rows, position: int, event: Any) -> None:
        self._score(rows, position, event, +1)

    @handles(Reputation.Reverted)
    def reverted(self, rows: Rows, position: int, event: Any) -> None:
        """A reopen took a prediction back: the agent's row is as before it, and the history
        says so with a row whose ``reverted`` is 1 (``transition`` is the reopen's)."""
        self._score(rows, position, event, -1)

    def _score(self, rows: Rows, position: int, event: Any, step: int) -> None:
        """Count a prediction (step +1) or take one back (step -1), with its history row."""
        agent = rows.get("reputation_agents", event.originator_id.int)
        if agent is None:
            return
        agent["believability_wad"] = event.after_wad
        agent["predictions"] += step
        agent["correct"] += step if event.correct else 0
        agent["updated_at"] = iso(event.timestamp)
        agent["updated_position"] = position
        rows.put("reputation_agents", agent)
        rows.append(
            "reputation_history",
            {
                "position": position,
                "agent": agent["agent"],
                "position_id": event.position_id,
                "artifact_id": event.artifact_id,
                "transition": event.transition,
                "correct": int(event.correct),
                "stake_units": event.stake_units,
                "before_wad": event.before_wad,
                "after_wad": event.after_wad,
                "at": iso(event.timestamp),
                "reverted": int(step < 0),
            },
        )
