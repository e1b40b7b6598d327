"""The Reputation aggregate: an agent's believability, moved only by settlements.

Believability lives in [0, 1] (stored in WAD) and starts at 0.5. Each terminal
settlement of one of the agent's positions is a prediction, correct when its payout
exceeded its cost, and moves believability toward 1 or 0 by a step weighted by the
stake; see docs/reputation.md. Each change names the position and transition that
caused it.
"""

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name, Units
from stakeledger.domain.rules.settlement import REPUTATION_START_WAD, update_believability_wad
from stakeledger.domain.vocabulary import WAD

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/reputation")


def reputation_uuid(agent: str) -> UUID:
    return uuid5(_NAMESPACE, agent)


class Reputation(CheapCopy, Aggregate):
    class Started(Aggregate.Created):
        agent: Name
        believability_wad: Units

    class Adjusted(Aggregate.Event):
        position_id: Name
        artifact_id: Name
        transition: int
        correct: bool
        stake_units: Units
        before_wad: Units
        after_wad: Units

        def apply(self, reputation: "Reputation") -> None:
            reputation.believability_wad = self.after_wad
            reputation.predictions += 1
            reputation.correct += 1 if self.correct else 0
            # The latest resolution's changes per artifact, so a reopen can take them back.
            latest = dict(reputation.latest_by_artifact or {})
            entry = latest.get(self.artifact_id)
            changes = entry["changes"] if entry and entry["transition"] == self.transition else []
            change = [self.position_id, self.correct, self.stake_units, self.before_wad, self.after_wad]
            latest[self.artifact_id] = {"transition": self.transition, "changes": [*changes, change]}
            reputation.latest_by_artifact = latest

    class Reverted(Aggregate.Event):
        """A reopen took back one prediction: the change it made is undone (later changes of
        other markets, if any, are kept: the step is subtracted, not the old value restored)."""

        position_id: Name
        artifact_id: Name
        transition: int
        reversed_transition: int
        correct: bool
        stake_units: Units
        before_wad: Units
        after_wad: Units

        def apply(self, reputation: "Reputation") -> None:
            reputation.believability_wad = self.after_wad
            reputation.predictions -= 1
            reputation.correct -= 1 if self.correct else 0
            latest = dict(reputation.latest_by_artifact or {})
            entry = latest.get(self.artifact_id)
            if entry is not None:
                remaining = [change for change in entry["changes"] if change[0] != self.position_id]
                if remaining:
                    latest[self.artifact_id] = {"transition": entry["transition"], "changes": remaining}
                else:
                    del latest[self.artifact_id]
            reputation.latest_by_artifact = latest

    # Snapshots from before reopens existed: no resolution to take back.
    latest_by_artifact = None

    def __init__(self, agent: str, believability_wad: int) -> None:
        self.latest_by_artifact = {}
        self.agent = agent
        self.believability_wad = believability_wad
        self.predictions = 0
        self.correct = 0

    @classmethod
    def start(cls, agent: str, at: datetime) -> "Reputation":
        return cls._create(
            cls.Started, id=reputation_uuid(agent), timestamp=at, agent=agent, believability_wad=REPUTATION_START_WAD
        )

    def record_prediction(
        self,
        position_id: str,
        artifact_id: str,
        transition: int,
        correct: bool,
        stake_units: int,
        reference_stake_units: int,
        at: datetime,
    ) -> None:
        before = self.believability_wad
        after = update_believability_wad(before, correct, stake_units, reference_stake_units)
        self.trigger_event(
            self.Adjusted,
            timestamp=at,
            position_id=position_id,
            artifact_id=artifact_id,
            transition=transition,
            correct=correct,
            stake_units=stake_units,
            before_wad=before,
            after_wad=after,
        )

    def revert_resolution(self, artifact_id: str, transition: int, reversed_transition: int, at: datetime) -> int:
        """Take back every change ``reversed_transition`` of ``artifact_id`` made, latest first;
        returns how many. Exact when nothing else moved the believability since."""
        entry = (self.latest_by_artifact or {}).get(artifact_id)
        if entry is None or entry["transition"] != reversed_transition:
            return 0
        changes = list(entry["changes"])
        for position_id, correct, stake_units, before_wad, after_wad in reversed(changes):
            now = self.believability_wad
            restored = min(max(now - (after_wad - before_wad), 0), WAD)
            self.trigger_event(
                self.Reverted,
                timestamp=at,
                position_id=position_id,
                artifact_id=artifact_id,
                transition=transition,
                reversed_transition=reversed_transition,
                correct=correct,
                stake_units=stake_units,
                before_wad=now,
                after_wad=restored,
            )
        return len(changes)


register_aggregate(Reputation)
