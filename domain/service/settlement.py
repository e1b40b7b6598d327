"""The settlement verbs of the StakeLedger application, by the seed's names."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from stakeledger.domain.decisions.settlement import (
    distribute_bounty,
    post_bounty,
    refund_bounty,
    reopen_artifact,
    transition_artifact,
)
from stakeledger.domain.errors import InvalidAmountError, InvalidInputError
from stakeledger.domain.rules.money import check_units
from stakeledger.domain.service.ledger import LedgerCore
from stakeledger.domain.vocabulary import STATES, WAD


class SettlementCommands(LedgerCore):
    """Mixed into StakeLedger; a transition and every settlement it causes are one transaction."""

    def transition_artifact(
        self,
        artifact_id: str,
        new_state: str,
        *,
        actor: str = "operator",
        reason: str = "",
        price_wad: int | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        if new_state not in STATES:
            raise InvalidInputError(f"state must be one of {', '.join(STATES)}, got {new_state!r}")
        if price_wad is not None and not (isinstance(price_wad, int) and 0 < price_wad < WAD):
            raise InvalidAmountError("settlement price must be strictly between 0 and 1")
        if not isinstance(reason, str) or len(reason) > 500:
            raise InvalidInputError("reason must be at most 500 characters")
        payload = {
            "artifact": artifact_id,
            "state": new_state,
            "actor": actor,
            "reason": reason,
            "price": str(price_wad),
        }
        return self.execute(
            "artifact.transition",
            lambda unit: transition_artifact(unit, artifact_id, new_state, actor, reason, price_wad),
            payload=payload,
            command_id=command_id,
        )

    def reopen_artifact(
        self, artifact_id: str, *, reason: str, actor: str = "operator", command_id: str | None = None
    ) -> dict[str, Any]:
        """Correct a wrong resolution within the market's correction window: every settlement,
        payout, reputation change, tax and subsidy of its terminal transition is reversed by new
        events, and the market returns to the state it had before (trading resumes)."""
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise InvalidInputError("a reopen needs a reason of 1 to 500 characters")
        if not isinstance(actor, str) or not actor or len(actor) > 200:
            raise InvalidInputError("actor must be 1 to 200 characters")
        return self.execute(
            "artifact.reopen",
            lambda unit: reopen_artifact(unit, artifact_id, actor, reason),
            payload={"artifact": artifact_id, "actor": actor, "reason": reason},
            command_id=command_id,
        )

    def settle_artifact(self, artifact_id: str, new_state: str, **kwargs: Any) -> dict[str, Any]:
        """Seed 000's name for a lifecycle transition that settles the artifact's positions."""
        return self.transition_artifact(artifact_id, new_state, **kwargs)

    def post_bounty(
        self, artifact_id: str, sponsor: str, amount_units: int, *, command_id: str | None = None
    ) -> dict[str, Any]:
        check_units(amount_units)
        return self.execute(
            "bounty.post",
            lambda unit: post_bounty(unit, artifact_id, sponsor, amount_units),
            payload={"artifact": artifact_id, "sponsor": sponsor, "amount": str(amount_units)},
            command_id=command_id,
        )

    def distribute_bounty(
        self, bounty_id: str, claimants: Sequence[tuple[str, Fraction]], *, command_id: str | None = None
    ) -> dict[str, Any]:
        weights = [(name, Fraction(weight)) for name, weight in claimants]
        if any(weight < 0 for _, weight in weights):
            raise InvalidAmountError("claimant weights must not be negative")
        return self.execute(
            "bounty.distribute",
            lambda unit: distribute_bounty(unit, bounty_id, weights),
            payload={"bounty": bounty_id, "claimants": [[n, str(w)] for n, w in weights]},
            command_id=command_id,
        )

    def refund_bounty(self, bounty_id: str, *, command_id: str | None = None) -> dict[str, Any]:
        return self.execute(
            "bounty.refund",
            lambda unit: refund_bounty(unit, bounty_id),
            payload={"bounty": bounty_id},
            command_id=command_id,
        )
