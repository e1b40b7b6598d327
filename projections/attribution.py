"""Performance attribution for one agent: where the P&L came from, by market, by correlation
group and by the signal features its orders recorded (issue 19).

Everything here reads; nothing writes. The figures are the portfolio summary's own: a
position's realised P&L is ``Position.realized_pnl_units`` (closes, partial closes,
settlements and partial settlements, less any settlement a reopen reversed), and a live
position's unrealised P&L is its exit value (``domain.rules.risk.marks``, what closing it now
would pay) less the cost still at risk, both taken from ``projections.dashboard.holdings``.
So the total row of every breakdown is ``portfolio summary``'s realised + unrealised to the
unit. A market's group is the agent's per-market ``correlation_group`` override, else the
artifact's ``--group``, else ``(none)``, as the summary's exposure by group reads it.

By feature, each position's P&L (realised + unrealised) is shared among the features of
its rationale in proportion to the absolute value of their log-odds contributions:

- a feature's share is floor(|P&L| × |value| / Σ|values|) base units;
- the units the floors leave (fewer than the number of features) go one each to the
  features with the largest remainders, ties broken by feature name (ascending);
- the shares then take the P&L's sign, so a loss is shared exactly as a gain of the same size.

A position's shares therefore sum exactly to its P&L, and the feature rows plus the
``(no features)`` row (positions without a rationale, without features, or with every
feature at zero) sum exactly to the total. A feature is *triggered* on a position when it is
present with a non-zero value, and *material* when it is triggered and |value| is at least its
threshold (0.05 log-odds unless overridden per feature; seed 002 uses 0.05 for fg/mom/btc_dom
and 0.10 for news/mfld); triggered = material + triggered-but-not-material, in positions and
in P&L.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.portfolio import Portfolio, portfolio_uuid
from stakeledger.domain.model.positions import Position
from stakeledger.domain.rules.rationale import MAX_FEATURE_WAD, MAX_FEATURES, check_feature_name, parse_wad, wad_text
from stakeledger.domain.rules.risk.marks import unrealised_pnl_units
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections import dashboard

BREAKDOWNS = ("market", "group", "feature")
NO_GROUP = "(none)"
NO_FEATURES = "(no features)"
DEFAULT_MATERIAL_WAD = 5 * WAD // 100  # 0.05 log-odds
# One override per feature a rationale may hold is all a caller can mean.
MAX_OVERRIDES = MAX_FEATURES


# Reading the rationale ------------------------------------------------------------------------


def features_of(position: Any) -> dict[str, int]:
    """The log-odds contributions (ints at 10**18) a position's order recorded, or {} when it
    recorded none (a position read from a record older than rationales has ``rationale`` None)."""
    rationale = getattr(position, "rationale", None)
    if not rationale:
        return {}
    features = rationale.get("features") if isinstance(rationale, Mapping) else getattr(rationale, "features", None)
    return {str(name): int(value) for name, value in (features or {}).items()}


# The split ------------------------------------------------------------------------------------


def split_pnl(pnl_units: int, features: Mapping[str, int]) -> dict[str, int]:
    """``pnl_units`` shared among the features with a non-zero value, in proportion to their
    absolute values, largest remainder first (ties by name); {} when no feature is non-zero.
    The shares always sum to ``pnl_units`` and carry its sign."""
    weights = {name: abs(value) for name, value in features.items() if value != 0}
    if not weights:
        return {}
    weight_sum = sum(weights.values())
    magnitude = abs(pnl_units)
    shares: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for name, weight in weights.items():
        share, remainder = divmod(magnitude * weight, weight_sum)
        shares[name] = share
        remainders.append((remainder, name))
    leftover_units = magnitude - sum(shares.values())
    assert 0 <= leftover_units < len(weights)
    for _, name in sorted(remainders, key=lambda item: (-item[0], item[1]))[:leftover_units]:
        shares[name] += 1
    sign = -1 if pnl_units < 0 else 1
    result = {name: sign * shares[name] for name in sorted(shares)}
    assert sum(result.values()) == pnl_units
    return result


# Thresholds -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """When a triggered feature is material: |value| >= its threshold (WAD log-odds)."""

    default_wad: int = DEFAULT_MATERIAL_WAD
    overrides: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_threshold(self.default_wad, "material")
        if len(self.overrides) > MAX_OVERRIDES:
            raise InvalidInputError(f"at most {MAX_OVERRIDES} per-feature thresholds, got {len(self.overrides)}")
        for name, wad in self.overrides.items():
            check_feature_name(name, "a threshold")
            _check_threshold(wad, f"the threshold for {name}")
        object.__setattr__(self, "overrides", MappingProxyType(dict(sorted(self.overrides.items()))))

    def for_feature(self, name: str) -> int:
        return self.overrides.get(name, self.default_wad)

    @classmethod
    def from_inputs(
        cls,
        material: str | None = None,
        material_for: Iterable[str] = (),
        *,
        separator: str = "=",
        names: tuple[str, str] = ("material", "material_for"),
    ) -> "Thresholds":
        """Thresholds from text: ``material`` such as "0.05" and overrides written
        ``NAME<separator>VALUE`` ("news_lo=0.10" on the command line, "news_lo:0.10" over HTTP).
        A name given twice is refused; refusals name the inputs by ``names`` (the options or parameters)."""
        material_name, material_for_name = names
        default = DEFAULT_MATERIAL_WAD if material is None else parse_threshold(material, material_name)
        items = list(material_for)
        if len(items) > MAX_OVERRIDES:
            raise InvalidInputError(
                f"{material_for_name}: at most {MAX_OVERRIDES} per-feature thresholds, got {len(items)}"
            )
        overrides: dict[str, int] = {}
        for item in items:
            if not isinstance(item, str):
                raise InvalidInputError(f"{material_for_name} is text, got {type(item).__name__}")
            name, found, value = item.partition(separator)
            if not found:
                raise InvalidInputError(
                    f"{material_for_name} is written NAME{separator}VALUE such as news_lo{separator}0.10, "
                    f"got {_shown(item)}"
                )
            check_feature_name(name, material_for_name)
            if name in overrides:
                raise InvalidInputError(f"{material_for_name}: the threshold for feature {name!r} is given twice")
            overrides[name] = parse_threshold(value, f"{material_for_name} {name}")
        return cls(default, overrides)


def parse_threshold(text: Any, what: str) -> int:
    """A materiality threshold in log-odds ("0.05") as an int at 10**18: 0 to 100 (the largest
    contribution a feature may record), at most 18 decimals; InvalidInputError otherwise."""
    wad = parse_wad(text, what)
    _check_threshold(wad, what)
    return wad


def _check_threshold(wad: Any, what: str) -> None:
    if isinstance(wad, bool) or not isinstance(wad, int):
        raise InvalidInputError(f"{what} must be an int at 10**18 scale, got {type(wad).__name__}")
    if wad < 0:
        raise InvalidInputError(f"{what} is a size in log-odds and must not be negative, got {wad_text(wad)}")
    if wad > MAX_FEATURE_WAD:
        raise InvalidInputError(
            f"{what} must be at most 100 log-odds (the largest a feature records), got {wad_text(wad)}"
        )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}… ({len(str(value))} characters)"


def check_by(by: Any) -> str:
    if by not in BREAKDOWNS:
        raise InvalidInputError(f"attribution is by one of {', '.join(BREAKDOWNS)}, got {_shown(by)}")
    return by


# Per-position figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionPnl:
    """One position's part of the summary's figures (unrealised, shares and cost are 0 once it is done)."""

    position_id: str
    artifact_id: str
    group: str
    live: bool
    shares_units: int
    cost_units: int
    value_units: int
    realized_units: int
    unrealized_units: int
    features: Mapping[str, int]

    @property
    def pnl_units(self) -> int:
        return self.realized_units + self.unrealized_units


def position_pnls(app: StakeLedger, agent: str) -> list[PositionPnl]:
    """Every position the agent ever held, oldest first, with the summary's marks; an unknown
    agent is refused (UNKNOWN_ACCOUNT)."""
    agent = agent_account_id(agent)
    app.get_account(agent)
    live, positions = dashboard.holdings(app, agent)
    marked = {h.position.position_id: h for h in live}
    portfolio = _portfolio(app, agent)
    groups: dict[str, str] = {}
    rows = []
    for position in positions:
        if position.artifact_id not in groups:
            groups[position.artifact_id] = _group(app.get_artifact(position.artifact_id), portfolio)
        holding = marked.get(position.position_id)
        rows.append(_position_pnl(position, groups[position.artifact_id], holding))
    return rows


def _position_pnl(position: Position, group: str, holding: dashboard.Holding | None) -> PositionPnl:
    if holding is None:
        shares = cost = value = unrealized = 0
    else:
        shares, cost, value = position.quantity_units, position.cost_units, holding.value_units
        unrealized = unrealised_pnl_units(value, cost)
    return PositionPnl(
        position_id=position.position_id,
        artifact_id=position.artifact_id,
        group=group,
        live=holding is not None,
        shares_units=shares,
        cost_units=cost,
        value_units=value,
        realized_units=position.realized_pnl_units,
        unrealized_units=unrealized,
        features=features_of(position),
    )


def _portfolio(app: StakeLedger, agent: str) -> Portfolio | None:
    from eventsourcing.application import AggregateNotFoundError

    try:
        return app.repository.get(portfolio_uuid(agent))
    except AggregateNotFoundError:
        return None


def _group(artifact: Artifact, portfolio: Portfolio | None) -> str:
    """The group ``dashboard.holdings`` gives a market: the agent's override, else the artifact's."""
    market = portfolio.market_config(artifact.artifact_id) if portfolio else None
    return (market.correlation_group if market and market.correlation_group else None) or artifact.group or NO_GROUP


# The breakdowns -------------------------------------------------------------------------------

_SUMS = (
    "open_shares_units",
    "cost_units",
    "value_units",
    "realized_pnl_units",
    "unrealized_pnl_units",
    "total_pnl_units",
)


def _totals(pnls: Sequence[PositionPnl]) -> dict[str, Any]:
    return {
        "positions": len(pnls),
        "live_positions": sum(1 for p in pnls if p.live),
        "open_shares_units": sum(p.shares_units for p in pnls),
        "cost_units": sum(p.cost_units for p in pnls),
        "value_units": sum(p.value_units for p in pnls),
        "realized_pnl_units": sum(p.realized_units for p in pnls),
        "unrealized_pnl_units": sum(p.unrealized_units for p in pnls),
        "total_pnl_units": sum(p.pnl_units for p in pnls),
    }


def _strings(row: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if key.endswith("_units") or key.endswith("_wad") else value for key, value in row.items()}


def by_market(pnls: Sequence[PositionPnl]) -> list[dict[str, Any]]:
    """One row per market the agent ever held, by artifact id."""
    markets: dict[str, list[PositionPnl]] = {}
    for p in pnls:
        markets.setdefault(p.artifact_id, []).append(p)
    return [
        {"artifact": artifact_id, "group": held[0].group, **_totals(held)}
        for artifact_id, held in sorted(markets.items())
    ]


def by_group(pnls: Sequence[PositionPnl]) -> list[dict[str, Any]]:
    """One row per correlation group, by name, with "(none)" last."""
    groups: dict[str, list[PositionPnl]] = {}
    for p in pnls:
        groups.setdefault(p.group, []).append(p)
    order = sorted(groups, key=lambda name: (name == NO_GROUP, name))
    return [
        {"group": name, "markets": len({p.artifact_id for p in groups[name]}), **_totals(groups[name])}
        for name in order
    ]


def by_feature(pnls: Sequence[PositionPnl], thresholds: Thresholds) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per feature any position recorded (by name), and the "(no features)" row."""
    rows: dict[str, dict[str, Any]] = {}
    unattributed = {
        "feature": NO_FEATURES,
        "positions": 0,
        "realized_pnl_units": 0,
        "unrealized_pnl_units": 0,
        "pnl_units": 0,
    }
    for p in pnls:
        # Realised and unrealised are shared each on its own, so both columns add up too.
        realized, unrealized = split_pnl(p.realized_units, p.features), split_pnl(p.unrealized_units, p.features)
        if not realized:
            unattributed["positions"] += 1
            unattributed["realized_pnl_units"] += p.realized_units
            unattributed["unrealized_pnl_units"] += p.unrealized_units
            unattributed["pnl_units"] += p.pnl_units
        for name, value in p.features.items():
            threshold = thresholds.for_feature(name)
            row = rows.setdefault(
                name,
                {
                    "feature": name,
                    "threshold_wad": threshold,
                    "present_positions": 0,
                    "triggered_positions": 0,
                    "realized_pnl_units": 0,
                    "unrealized_pnl_units": 0,
                    "pnl_units": 0,
                    "material_positions": 0,
                    "material_pnl_units": 0,
                    "not_material_positions": 0,
                    "not_material_pnl_units": 0,
                },
            )
            row["present_positions"] += 1
            if value == 0:
                continue
            share = realized[name] + unrealized[name]
            row["triggered_positions"] += 1
            row["realized_pnl_units"] += realized[name]
            row["unrealized_pnl_units"] += unrealized[name]
            row["pnl_units"] += share
            kind = "material" if abs(value) >= threshold else "not_material"
            row[f"{kind}_positions"] += 1
            row[f"{kind}_pnl_units"] += share
    return [rows[name] for name in sorted(rows)], unattributed


def attribution(
    app: StakeLedger, agent: str, *, by: str = "market", thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """The agent's P&L by market, group or feature, with the total row (the summary's
    realised + unrealised). Amounts are decimal strings of base units, thresholds WAD strings."""
    by = check_by(by)
    thresholds = Thresholds() if thresholds is None else thresholds
    pnls = position_pnls(app, agent)
    total = _totals(pnls)
    result: dict[str, Any] = {"agent": agent, "by": by, "marked_at": "exit value"}
    if by == "market":
        rows = by_market(pnls)
    elif by == "group":
        rows = by_group(pnls)
    else:
        rows, unattributed = by_feature(pnls, thresholds)
        for part, whole in (("realized", "realized"), ("unrealized", "unrealized"), ("", "total")):
            key = f"{part}_pnl_units" if part else "pnl_units"
            assert sum(row[key] for row in rows) + unattributed[key] == total[f"{whole}_pnl_units"]
        result["material_wad"] = str(thresholds.default_wad)
        result["material_for_wad"] = {name: str(wad) for name, wad in thresholds.overrides.items()}
        result["no_features"] = _strings(unattributed)
    if by != "feature":
        for key in _SUMS:
            assert sum(row[key] for row in rows) == total[key]
    result["rows"] = [_strings(row) for row in rows]
    result["total"] = _strings(total)
    return result
