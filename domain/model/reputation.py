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

from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name, Units
from stakeledger.domain.rules.settlement import REPUTATION_START_WAD, update_believability_wad

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/reputation")


def reputation_uuid(agent: str) -> UUID:
    return uuid5(_NAMESPACE, agent)


class Reputation(Aggregate):
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

    def __init__(self, agent: str, believability_wad: int) -> None:
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


register_aggregate(Reputation)
