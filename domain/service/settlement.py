"""The settlement verbs of the StakeLedger application, by the seed's names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from stakeledger.domain.decisions.settlement import (
    distribute_bounty,
    post_bounty,
    refund_bounty,
    reopen_artifact,
    transition_artifact,
)
from stakeledger.domain.errors import InvalidAmountError, InvalidInputError, UnknownArtifactError, UnknownPositionError
from stakeledger.domain.model.artifacts import Artifact, artifact_of, artifact_uuid, check_artifact_id, micros_text
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.money import check_units, parse_fraction, parse_price_wad
from stakeledger.domain.rules.resolution import auto_states, distance_to_threshold_wad
from stakeledger.domain.rules.settlement import SettlementOutcome, compute_settlement_pnl
from stakeledger.domain.service.ledger import LedgerCore
from stakeledger.domain.vocabulary import DEPRECATED, FLAGGED, STATES, TERMINAL_STATES, TRADABLE_STATES, VALIDATED, WAD


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
        if not isinstance(artifact_id, str) or not isinstance(new_state, str):
            raise InvalidInputError("settle_artifact(artifact_id, new_state) takes an artifact id and a state name")
        return self.transition_artifact(artifact_id, new_state, **kwargs)

    def settle_position(self, position_id: Any, settlement_price: Any = None) -> None:
        """Seed 000's name; refused. A position settles only with its artifact's transition (every
        position of a market at one price, in one transaction), or closes at the market's price."""
        raise InvalidInputError(
            "positions are not settled one at a time: settle_artifact(artifact_id, state) settles every "
            "position of the market at one price; close_position(position_id) sells one back at the market price"
        )

    def compute_settlement_pnl(
        self, position: Any, settlement_price: Any, state: str | None = None
    ) -> SettlementOutcome:
        """What settling ``position`` (a Position or its id) at ``settlement_price`` (a decimal
        string such as "0.8", a Decimal or Fraction, or an integer in WAD) would pay, for
        ``state`` or, when not given, the state its artifact is in now. Writes nothing; any
        other argument shape is refused with InvalidInputError."""
        if isinstance(position, str):
            position = self._position(position)
        elif not isinstance(position, Position):
            raise InvalidInputError(f"position must be a Position or a position id, got {type(position).__name__}")
        price_wad = _price_wad(settlement_price)
        if state is None:
            state = self._artifact(position.artifact_id).state
        return compute_settlement_pnl(position, price_wad, state)

    def _position(self, position_id: str) -> Position:
        from eventsourcing.application import AggregateNotFoundError

        artifact_of(position_id)  # refuses an id that cannot be a position's
        try:
            position = self.repository.get(position_uuid(position_id))
        except AggregateNotFoundError:
            raise UnknownPositionError(f"unknown position {position_id!r}") from None
        assert isinstance(position, Position)
        return position

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
        weights = _weights(claimants)
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

    # Reading resolution ---------------------------------------------------------------------

    def _artifact(self, artifact_id: str) -> Artifact:
        from eventsourcing.application import AggregateNotFoundError

        try:
            artifact = self.repository.get(artifact_uuid(check_artifact_id(artifact_id)))
        except AggregateNotFoundError:
            raise UnknownArtifactError(f"unknown artifact {artifact_id!r}") from None
        assert isinstance(artifact, Artifact)
        return artifact

    def resolution_status(self, artifact_id: str) -> dict[str, Any]:
        """How the market resolves, from the aggregate: its correction window (and until when the
        last resolution may be reopened), whether it resolves by itself, and for each threshold
        how far the window's average is from it and since when it has been met."""
        artifact = self._artifact(artifact_id)
        rules = artifact.resolution_rules
        now = max(self.clock.now(), artifact.modified_on)
        until = artifact.may_reopen_until()
        status: dict[str, Any] = {
            "artifact": artifact.artifact_id,
            "state": artifact.state,
            "correction_hours": rules.correction_hours,
            "reopen_until": None if until is None or until < now else until.isoformat(),
            "auto_resolve": rules.auto_resolve,
            "sustained_hours": rules.sustained_hours,
            "thresholds": [],
        }
        if artifact.state not in TRADABLE_STATES:
            return status  # a closed or frozen market has no threshold to approach
        average = artifact.window_average_price_wad(now)
        status["window_average_wad"] = str(average)
        automatic = auto_states(artifact.state) if rules.auto_resolve else ()
        since_beyond = artifact.since_beyond or {}
        for state in (VALIDATED, DEPRECATED, FLAGGED):
            if state == artifact.state:
                continue
            comparison, bound = rules.bound_for(state) or ("", 0)
            since = since_beyond.get(state) if state in automatic else None
            status["thresholds"].append(
                {
                    "state": state,
                    "comparison": comparison,
                    "bound_wad": str(bound),
                    "met": rules.meets(state, average),
                    "distance_wad": str(distance_to_threshold_wad(rules, state, average)),
                    "automatic": state in automatic,
                    "met_since": None if since is None else micros_text(since),
                    "due_at": None if since is None else micros_text(since + rules.sustained_micros),
                }
            )
        return status

    def artifact_history(self, artifact_id: str) -> list[dict[str, Any]]:
        """Every lifecycle step of the artifact, oldest first, read from its events: the listing,
        each transition (actor, reason, settlement price, the window's average then, what it
        paid, minted and taxed) and each reopen (what it reversed). Amounts in base units."""
        artifact = self._artifact(artifact_id)
        history: list[dict[str, Any]] = []
        by_transition: dict[int, dict[str, Any]] = {}
        number = 0
        for event in self.events.get(artifact.id):
            if isinstance(event, Artifact.Listed):
                history.append({"kind": "listed", "transition": 0, "at": event.timestamp.isoformat(), "to": "listed"})
            elif isinstance(event, Artifact.Transitioned):
                number += 1
                entry = {
                    "kind": "transition",
                    "transition": number,
                    "at": event.timestamp.isoformat(),
                    "from": event.from_state,
                    "to": event.to_state,
                    "actor": event.actor,
                    "reason": event.reason,
                    "price_long_wad": str(event.price_long_wad),
                    "window_average_wad": str(event.window_average_wad),
                    # None when the transition settles nothing, or was written before it was booked.
                    "paid_units": None,
                    "subsidy_units": None,
                    "tax_units": None,
                    "terminal": event.to_state in TERMINAL_STATES,
                    "reopened_by": None,
                }
                if event.to_state not in (FLAGGED, *TERMINAL_STATES):
                    entry.update(paid_units="0", subsidy_units="0", tax_units="0")
                by_transition[number] = entry
                history.append(entry)
            elif isinstance(event, Artifact.ResolutionBooked):
                booked = by_transition.get(event.transition)
                if booked is not None:
                    booked.update(
                        paid_units=str(event.paid_units),
                        subsidy_units=str(event.subsidy_units),
                        tax_units=str(event.tax_units),
                    )
            elif isinstance(event, Artifact.ResolutionReversed):
                number += 1
                reversed_entry = by_transition.get(event.reversed_transition)
                if reversed_entry is not None:
                    reversed_entry["reopened_by"] = number
                history.append(
                    {
                        "kind": "reopen",
                        "transition": number,
                        "at": event.timestamp.isoformat(),
                        "from": event.from_state,
                        "to": event.to_state,
                        "actor": event.actor,
                        "reason": event.reason,
                        "reverses": event.reversed_transition,
                        "paid_units": str(-event.reversed_payout_units),
                        "subsidy_units": str(-event.reversed_subsidy_units),
                        "tax_units": str(-event.reversed_tax_units),
                        "orders_restored": len(event.order_ids),
                    }
                )
        return history


def _price_wad(value: Any) -> int:
    """A settlement price from the shapes a Python caller may pass, as WAD; a float is refused
    (0.1 has no exact binary value: write "0.1")."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidInputError(
            f"settlement price must be a decimal string such as '0.8', a Decimal, a Fraction or WAD, got {value!r}"
        )
    if isinstance(value, int):
        wad = value
    elif isinstance(value, str):
        try:
            wad = parse_price_wad(value, "settlement price")
        except InvalidAmountError as error:
            raise InvalidInputError(str(error)) from None
    elif isinstance(value, (Decimal, Fraction)):
        if isinstance(value, Decimal) and not value.is_finite():
            raise InvalidInputError(f"settlement price must be a finite number, got {value}")
        scaled = Fraction(value) * WAD
        if scaled.denominator != 1:
            raise InvalidInputError(f"settlement price {value} has more than 18 decimals")
        wad = int(scaled)
    else:
        raise InvalidInputError(f"settlement price must be a decimal string or a number, got {type(value).__name__}")
    if not 0 < wad < WAD:
        raise InvalidInputError("settlement price must be strictly between 0 and 1")
    return wad


def _weights(claimants: Any) -> list[tuple[str, Fraction]]:
    """Claimants as (name, weight) pairs or a {name: weight} mapping; weights as Fractions,
    Decimals, ints or strings ("4/5", "0.8"). Anything else is one InvalidInputError."""
    pairs = list(claimants.items()) if isinstance(claimants, Mapping) else claimants
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
        raise InvalidInputError("claimants must be (name, weight) pairs or a {name: weight} mapping")
    weights: list[tuple[str, Fraction]] = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not isinstance(pair[0], str):
            raise InvalidInputError(f"each claimant is a (name, weight) pair, got {pair!r}")
        name, weight = pair
        if isinstance(weight, (bool, float)):
            raise InvalidInputError(
                f"weight of {name!r} must be exact (a Fraction, a Decimal or '4/5'), got {weight!r}"
            )
        try:
            weights.append((name, parse_fraction(weight) if isinstance(weight, str) else Fraction(weight)))
        except (TypeError, ValueError, ZeroDivisionError, InvalidAmountError):
            raise InvalidInputError(f"weight of {name!r} is not a number: {weight!r}") from None
    return weights
