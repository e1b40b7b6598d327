"""Performance attribution (issue 19): P&L by market, group and signal feature.

- The split alone, as properties: each position's shares sum exactly to its P&L, follow the
  largest-remainder rule (ties by name), carry the P&L's sign, and do not depend on the order
  the features were given in; over random positions and thresholds the feature rows plus
  "(no features)" sum to the total, and triggered = material + not material.
- Through the application on memory, SQLite and PostgreSQL: several markets in two groups,
  positions with and without features, a partial close, a close, a flag's partial settlement,
  a validation and a reopened deprecation: every breakdown's total is the portfolio summary's
  realised + unrealised to the unit, and nothing is written.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import InvalidInputError, UnknownAccountError
from stakeledger.domain.model.positions import position_uuid
from stakeledger.domain.rules.rationale import Rationale
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections import dashboard
from stakeledger.projections.attribution import (
    DEFAULT_MATERIAL_WAD,
    NO_FEATURES,
    NO_GROUP,
    PositionPnl,
    Thresholds,
    attribution,
    by_feature,
    by_group,
    by_market,
    features_of,
    parse_threshold,
    split_pnl,
)
from tests.conftest import stored_event_count

TOKEN = 10**6
CENT_LOG_ODDS = WAD // 100  # 0.01 log-odds

feature_names = st.from_regex(r"[a-z][a-z0-9_]{0,3}", fullmatch=True)
feature_values = st.one_of(st.just(0), st.integers(-100 * WAD, 100 * WAD), st.integers(-1000, 1000))
feature_maps = st.dictionaries(feature_names, feature_values, max_size=8)
pnls = st.integers(-(10**30), 10**30)


# The split -------------------------------------------------------------------------------------


@given(pnl=pnls, features=feature_maps)
def test_split_when_any_pnl_and_features_then_shares_sum_exactly_and_follow_largest_remainder(pnl, features):
    shares = split_pnl(pnl, features)

    weights = {name: abs(value) for name, value in features.items() if value}
    if not weights:
        assert shares == {}
        return
    assert set(shares) == set(weights)
    assert sum(shares.values()) == pnl
    total_weight = sum(weights.values())
    extra = {}
    for name, share in shares.items():
        assert share == 0 or (share > 0) == (pnl > 0)  # the P&L's sign, or nothing
        floor, remainder = divmod(abs(pnl) * weights[name], total_weight)
        assert abs(share) in (floor, floor + 1)
        extra[name] = (abs(share) - floor, remainder)
    # Every unit beyond a floor went to a larger remainder, or an equal one with an earlier name.
    for got, (one, remainder) in extra.items():
        for missed, (none, other) in extra.items():
            if one == 1 and none == 0:
                assert (-remainder, got) < (-other, missed)


@given(pnl=pnls, features=feature_maps, scale=st.integers(1, 10**6))
def test_split_when_sign_order_or_scale_change_then_the_shares_mirror_or_stay(pnl, features, scale):
    shares = split_pnl(pnl, features)

    assert split_pnl(-pnl, features) == {name: -share for name, share in shares.items()}
    assert split_pnl(pnl, dict(reversed(list(features.items())))) == shares
    assert split_pnl(pnl, {name: value * scale for name, value in features.items()}) == shares
    flipped = {name: -value for name, value in features.items()}
    assert split_pnl(pnl, flipped) == shares  # the weight is |log-odds|: a bearish signal counts as much


def test_split_when_remainders_tie_then_the_leftover_unit_goes_by_name():
    # 10 over 12 : 6 : 6 is 5, 2.5, 2.5: the tied half unit goes to mom_lo, the earlier name.
    features = {"news_lo": -6 * CENT_LOG_ODDS, "fg_lo": 12 * CENT_LOG_ODDS, "mom_lo": 6 * CENT_LOG_ODDS}

    assert split_pnl(-10, features) == {"fg_lo": -5, "mom_lo": -3, "news_lo": -2}
    assert split_pnl(10, features) == {"fg_lo": 5, "mom_lo": 3, "news_lo": 2}
    assert split_pnl(7, {"b": 1, "a": 1, "c": 1}) == {"a": 3, "b": 2, "c": 2}
    assert split_pnl(0, features) == {"fg_lo": 0, "mom_lo": 0, "news_lo": 0}
    assert split_pnl(5, {"fg_lo": 0}) == {}  # all zero: the position has no features to share with


positions = st.builds(
    PositionPnl,
    position_id=st.just("P"),
    artifact_id=st.sampled_from(["A", "B", "C"]),
    group=st.sampled_from(["bio", "chem", NO_GROUP]),
    live=st.booleans(),
    shares_units=st.integers(0, 10**12),
    cost_units=st.integers(0, 10**12),
    value_units=st.integers(0, 10**12),
    realized_units=st.integers(-(10**12), 10**12),
    unrealized_units=st.integers(-(10**12), 10**12),
    features=st.one_of(st.just({}), feature_maps),
)
thresholds = st.builds(
    Thresholds,
    default_wad=st.integers(0, 100 * WAD),
    overrides=st.dictionaries(feature_names, st.integers(0, 100 * WAD), max_size=4),
)


@given(held=st.lists(positions, max_size=12), limits=thresholds)
def test_breakdowns_when_random_positions_then_every_breakdown_sums_to_the_total_and_splits_add_up(held, limits):
    total = sum(p.pnl_units for p in held)
    rows, unattributed = by_feature(held, limits)

    assert sum(row["pnl_units"] for row in rows) + unattributed["pnl_units"] == total
    for part in ("realized", "unrealized"):
        whole = sum(p.realized_units if part == "realized" else p.unrealized_units for p in held)
        assert sum(row[f"{part}_pnl_units"] for row in rows) + unattributed[f"{part}_pnl_units"] == whole
    assert unattributed["positions"] == sum(1 for p in held if not any(p.features.values()))
    for row in rows:
        name, threshold = row["feature"], limits.for_feature(row["feature"])
        assert row["threshold_wad"] == threshold
        values = [p.features[name] for p in held if name in p.features]
        assert row["present_positions"] == len(values)
        assert row["triggered_positions"] == sum(1 for v in values if v != 0)
        assert row["material_positions"] == sum(1 for v in values if v != 0 and abs(v) >= threshold)
        assert row["material_positions"] + row["not_material_positions"] == row["triggered_positions"]
        assert row["material_pnl_units"] + row["not_material_pnl_units"] == row["pnl_units"]
        assert row["realized_pnl_units"] + row["unrealized_pnl_units"] == row["pnl_units"]
        material_pnl = sum(
            split_pnl(p.realized_units, p.features)[name] + split_pnl(p.unrealized_units, p.features)[name]
            for p in held
            if p.features.get(name) and abs(p.features[name]) >= threshold
        )
        assert row["material_pnl_units"] == material_pnl
    for grouped in (by_market(held), by_group(held)):
        assert sum(row["total_pnl_units"] for row in grouped) == total
        assert sum(row["positions"] for row in grouped) == len(held)


# Thresholds ----------------------------------------------------------------------------------------


def test_thresholds_when_written_as_text_then_exact_wad_with_overrides_by_name():
    limits = Thresholds.from_inputs("0.1", ["news_lo=0.10", "mfld_lo=0.25"])

    assert limits.default_wad == 10 * CENT_LOG_ODDS
    assert (limits.for_feature("news_lo"), limits.for_feature("mfld_lo")) == (10 * CENT_LOG_ODDS, 25 * CENT_LOG_ODDS)
    assert limits.for_feature("fg_lo") == 10 * CENT_LOG_ODDS
    assert Thresholds().for_feature("fg_lo") == DEFAULT_MATERIAL_WAD == 5 * CENT_LOG_ODDS
    assert parse_threshold("0", "material") == 0 and parse_threshold("100", "material") == 100 * WAD
    http = Thresholds.from_inputs(None, ["fg_lo:0.2"], separator=":")
    assert http.overrides == {"fg_lo": 20 * CENT_LOG_ODDS}


@pytest.mark.parametrize(
    ("material", "material_for", "words"),
    [
        ("-0.05", [], "must not be negative"),
        ("NaN", [], "plain decimal number"),
        ("inf", [], "plain decimal number"),
        ("1e-2", [], "plain decimal number"),
        (" 0.05", [], "plain decimal number"),
        ("0.0000000000000000001", [], "at most 18"),
        ("100.000000000000000001", [], "at most 100 log-odds"),
        (None, ["Fg=0.1"], "feature names are"),
        (None, ["fg lo=0.1"], "feature names are"),
        (None, ["fg_lo"], "NAME=VALUE"),
        (None, ["fg_lo=-0.1"], "must not be negative"),
        (None, ["fg_lo=0.1", "fg_lo=0.2"], "given twice"),
        (None, [f"f{index}=0.1" for index in range(33)], "at most 32"),
    ],
)
def test_thresholds_when_bad_then_refused_naming_the_input(material, material_for, words):
    with pytest.raises(InvalidInputError, match=words):
        Thresholds.from_inputs(material, material_for, names=("--material", "--material-for"))


def test_features_of_when_no_rationale_then_none_and_otherwise_the_stored_ints():
    class Old:  # a position folded from a record older than rationales
        pass

    class Stored:
        rationale = {"belief_wad": 6 * WAD // 10, "features": {"fg_lo": 12 * CENT_LOG_ODDS}}

    class Bare:
        rationale = {"reasoning": "a hunch"}

    assert features_of(Old()) == {} and features_of(Bare()) == {}
    assert features_of(Stored()) == {"fg_lo": 12 * CENT_LOG_ODDS}


# Through the application -------------------------------------------------------------------------

DAY = 86_400
FEATURES_M1 = {"fg_lo": 12 * CENT_LOG_ODDS, "news_lo": -3 * CENT_LOG_ODDS}  # material, not material
FEATURES_M2 = {"mom_lo": 7 * CENT_LOG_ODDS, "mfld_lo": 20 * CENT_LOG_ODDS}
FEATURES_M4 = {"fg_lo": 0, "btc_dom_lo": 4 * CENT_LOG_ODDS}  # fg_lo present but not triggered


def why(features: dict[str, int]) -> Rationale:
    return Rationale(belief_wad=6 * WAD // 10, reasoning="seed 002 signals", features=features)


def build(ledger: StakeLedger, clock: ManualClock) -> dict[str, str]:
    """alice trades six markets: M1, M2 in bio; M3, M5 in chem (M5 through a per-market
    override); M4, M6 in none. bob trades against her so prices move."""
    for name in ("alice", "bob"):
        ledger.open_account(name)
        ledger.mint(name, 1_000 * TOKEN)
    for artifact_id, group in (("M1", "bio"), ("M2", "bio"), ("M3", "chem"), ("M4", None), ("M5", None), ("M6", None)):
        ledger.list_artifact(artifact_id, f"Artifact {artifact_id}", 100 * TOKEN, group=group)
    ledger.configure_portfolio("alice")  # the default limits admit every order below
    ledger.configure_market("alice", "M5", correlation_group="chem")
    ids = {
        "m1": ledger.open_position("alice", "M1", "long", 40 * TOKEN, rationale=why(FEATURES_M1))["position"],
        "m2": ledger.open_position("alice", "M2", "short", 20 * TOKEN, rationale=why(FEATURES_M2))["position"],
        "m3": ledger.open_position("alice", "M3", "long", 25 * TOKEN)["position"],  # no rationale
        "m4": ledger.open_position("alice", "M4", "long", 30 * TOKEN, rationale=why(FEATURES_M4))["position"],
        "m5": ledger.open_position("alice", "M5", "short", 15 * TOKEN, rationale=why({"fg_lo": 9 * CENT_LOG_ODDS}))[
            "position"
        ],
        "m6": ledger.open_position("alice", "M6", "short", 10 * TOKEN, rationale=why({"news_lo": WAD}))["position"],
    }
    for artifact_id, side in (
        ("M1", "short"),
        ("M2", "long"),
        ("M3", "long"),
        ("M4", "long"),
        ("M5", "long"),
        ("M6", "long"),
    ):
        ledger.open_position("bob", artifact_id, side, 12 * TOKEN)
    clock.advance(seconds=DAY)
    quantity = ledger.repository.get(position_uuid(ids["m2"])).quantity_units
    ledger.close_position(ids["m2"], shares_units=quantity // 3)  # a partial close
    ledger.close_position(ids["m3"])  # a close
    ledger.transition_artifact("M5", "flagged", price_wad=2 * WAD // 10)  # a partial settlement
    ledger.transition_artifact("M4", "validated", price_wad=8 * WAD // 10)  # a settlement
    ledger.transition_artifact("M6", "deprecated", price_wad=5 * WAD // 100)
    clock.advance(seconds=3_600)
    ledger.reopen_artifact("M6", reason="the oracle was wrong")  # the settlement is reversed
    return ids


def summary_total(ledger: StakeLedger) -> tuple[int, int]:
    data = dashboard.summary(ledger, "alice")
    return int(data["realized_pnl_units"]), int(data["unrealized_pnl_units"])


def ints(row: dict[str, Any]) -> dict[str, Any]:
    return {key: int(value) if key.endswith(("_units", "_wad")) else value for key, value in row.items()}


def test_attribution_when_markets_groups_closes_and_settlements_then_totals_are_the_summary_to_the_unit(
    ledger: StakeLedger, clock: ManualClock
):
    ids = build(ledger, clock)
    realized, unrealized = summary_total(ledger)
    head = stored_event_count(ledger)

    markets = attribution(ledger, "alice", by="market")
    groups = attribution(ledger, "alice", by="group")
    features = attribution(ledger, "alice", by="feature")

    assert stored_event_count(ledger) == head  # reads write nothing
    for data in (markets, groups, features):
        total = ints(data["total"])
        assert (total["realized_pnl_units"], total["unrealized_pnl_units"]) == (realized, unrealized)
        assert total["total_pnl_units"] == realized + unrealized
        assert (total["positions"], total["live_positions"]) == (6, 4)  # m3 closed, m4 settled
    assert realized != 0 and unrealized != 0
    # By market: each market's realised is its positions', as the dashboard's pairs say.
    rows = {row["artifact"]: ints(row) for row in markets["rows"]}
    assert list(rows) == ["M1", "M2", "M3", "M4", "M5", "M6"]
    pairs = {row["artifact"]: int(row["realized_units"]) for row in dashboard.pairs(ledger, "alice")}
    assert {artifact: row["realized_pnl_units"] for artifact, row in rows.items()} == pairs
    assert [rows[a]["group"] for a in rows] == ["bio", "bio", "chem", NO_GROUP, "chem", NO_GROUP]
    m2 = ledger.repository.get(position_uuid(ids["m2"]))
    assert (rows["M2"]["open_shares_units"], rows["M2"]["cost_units"]) == (m2.quantity_units, m2.cost_units)
    assert rows["M2"]["realized_pnl_units"] == m2.realized_pnl_units != 0  # the partial close
    assert (rows["M3"]["live_positions"], rows["M3"]["open_shares_units"], rows["M3"]["unrealized_pnl_units"]) == (
        0,
        0,
        0,
    )
    assert rows["M4"]["realized_pnl_units"] > 0 and rows["M4"]["live_positions"] == 0  # validated long
    assert rows["M5"]["realized_pnl_units"] > 0 and rows["M5"]["live_positions"] == 1  # a short's flag bonus
    assert rows["M6"]["realized_pnl_units"] == 0 and rows["M6"]["live_positions"] == 1  # reversed: live again
    # By group: the market rows summed, the per-market override included, "(none)" last.
    by_name = {row["group"]: ints(row) for row in groups["rows"]}
    assert list(by_name) == ["bio", "chem", NO_GROUP]
    for name, members in (("bio", ["M1", "M2"]), ("chem", ["M3", "M5"]), (NO_GROUP, ["M4", "M6"])):
        for key in ("realized_pnl_units", "unrealized_pnl_units", "total_pnl_units", "cost_units"):
            assert by_name[name][key] == sum(rows[m][key] for m in members), (name, key)
        assert by_name[name]["markets"] == 2
    exposure = dashboard.summary(ledger, "alice")["exposure_by_group_units"]
    assert {name: str(row["cost_units"]) for name, row in by_name.items() if row["cost_units"]} == exposure
    # By feature: shares of each position's P&L; no features is m3 alone.
    unattributed = ints(features["no_features"])
    assert (unattributed["feature"], unattributed["positions"]) == (NO_FEATURES, 1)
    assert unattributed["pnl_units"] == rows["M3"]["total_pnl_units"]
    shares = {row["feature"]: ints(row) for row in features["rows"]}
    assert list(shares) == ["btc_dom_lo", "fg_lo", "mfld_lo", "mom_lo", "news_lo"]
    assert sum(row["pnl_units"] for row in shares.values()) + unattributed["pnl_units"] == realized + unrealized
    assert shares["btc_dom_lo"]["pnl_units"] == rows["M4"]["total_pnl_units"]  # fg_lo is 0 there
    assert shares["mfld_lo"]["pnl_units"] + shares["mom_lo"]["pnl_units"] == rows["M2"]["total_pnl_units"]
    m1 = rows["M1"]["total_pnl_units"]
    assert abs(shares["fg_lo"]["pnl_units"] - rows["M5"]["total_pnl_units"] - Fraction(m1 * 12, 15)) < 1
    assert abs(shares["news_lo"]["pnl_units"] - rows["M6"]["total_pnl_units"] - Fraction(m1 * 3, 15)) < 1


def test_attribution_when_by_feature_then_the_triggered_and_material_split_counts_right(
    ledger: StakeLedger, clock: ManualClock
):
    build(ledger, clock)
    rows_of = lambda data: {row["feature"]: ints(row) for row in data["rows"]}  # noqa: E731

    default = rows_of(attribution(ledger, "alice", by="feature"))
    seed_002 = rows_of(
        attribution(
            ledger, "alice", by="feature", thresholds=Thresholds.from_inputs(None, ["news_lo=0.10", "mfld_lo=0.25"])
        )
    )

    counts = lambda row: (  # noqa: E731
        row["present_positions"],
        row["triggered_positions"],
        row["material_positions"],
        row["not_material_positions"],
    )
    # fg_lo: 0.12 on M1 and 0.09 on M5 (material), 0 on M4 (present, not triggered).
    assert counts(default["fg_lo"]) == (3, 2, 2, 0)
    # news_lo: -0.03 on M1 (not material), 1.0 on M6 (material at 0.05 and at 0.10).
    assert counts(default["news_lo"]) == counts(seed_002["news_lo"]) == (2, 2, 1, 1)
    assert counts(default["btc_dom_lo"]) == (1, 1, 0, 1)  # 0.04 < 0.05
    assert counts(default["mfld_lo"]) == (1, 1, 1, 0)
    assert counts(seed_002["mfld_lo"]) == (1, 1, 0, 1)  # 0.20 < its own 0.25
    assert seed_002["mfld_lo"]["threshold_wad"] == 25 * CENT_LOG_ODDS
    assert seed_002["fg_lo"]["threshold_wad"] == DEFAULT_MATERIAL_WAD
    for rows in (default, seed_002):
        for row in rows.values():
            assert row["material_pnl_units"] + row["not_material_pnl_units"] == row["pnl_units"]
    assert seed_002["mfld_lo"]["not_material_pnl_units"] == default["mfld_lo"]["material_pnl_units"] != 0
    assert default["btc_dom_lo"]["material_pnl_units"] == 0


held_markets = st.lists(
    st.tuples(
        st.sampled_from(["long", "short"]),
        st.integers(1, 40),  # alice's tokens
        st.one_of(
            st.none(), st.dictionaries(st.sampled_from(["fg_lo", "mom_lo", "news_lo"]), feature_values, max_size=3)
        ),
        st.integers(0, 30),  # bob's tokens on the other side
        st.sampled_from(["hold", "partial", "close"]),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(markets=held_markets, validate_first=st.booleans(), limit_fill=st.booleans())
def test_attribution_when_random_trades_with_random_features_then_rows_sum_to_the_summary_to_the_unit(
    markets, validate_first, limit_fill
):
    ledger = open_ledger("memory://", clock=ManualClock(), new_id=SeededIds(7))
    try:
        ledger.initialise(decimals=6)
        for name in ("alice", "bob"):
            ledger.open_account(name)
            ledger.mint(name, 10_000 * TOKEN)
        for index, (side, tokens, features, against, after) in enumerate(markets):
            artifact_id = f"M{index}"
            ledger.list_artifact(artifact_id, artifact_id, 100 * TOKEN, group="bio" if index < 2 else None)
            rationale = Rationale.from_event({"features": features}) if features else None
            opened = ledger.open_position("alice", artifact_id, side, tokens * TOKEN, rationale=rationale)
            if against:
                ledger.open_position("bob", artifact_id, "short" if side == "long" else "long", against * TOKEN)
            shares = int(opened["shares_units"])
            if after == "partial" and shares > 1:
                ledger.close_position(opened["position"], shares_units=shares // 2)
            elif after == "close":
                ledger.close_position(opened["position"])
        if limit_fill:  # a resting order's rationale reaches the position its fill opens
            ledger.list_artifact("LIM", "LIM", 100 * TOKEN)
            ledger.place_limit_order(
                "alice", "LIM", "long", 5 * TOKEN, 45 * WAD // 100, rationale=why({"mfld_lo": 2 * CENT_LOG_ODDS})
            )
            ledger.open_position("bob", "LIM", "short", 30 * TOKEN)
        if validate_first:
            ledger.transition_artifact("M0", "validated", price_wad=8 * WAD // 10)
        realized, unrealized = summary_total(ledger)
        head = stored_event_count(ledger)

        for by in ("market", "group", "feature"):
            data = attribution(ledger, "alice", by=by)
            total = ints(data["total"])
            assert (total["realized_pnl_units"], total["unrealized_pnl_units"]) == (realized, unrealized)
            rows = [ints(row) for row in data["rows"]]
            if by == "feature":
                unattributed = int(data["no_features"]["pnl_units"])
                assert sum(row["pnl_units"] for row in rows) + unattributed == realized + unrealized
                if limit_fill:
                    (mfld,) = [row for row in rows if row["feature"] == "mfld_lo"]
                    assert (mfld["triggered_positions"], mfld["not_material_positions"]) == (1, 1)
            else:
                assert sum(row["total_pnl_units"] for row in rows) == realized + unrealized
        assert stored_event_count(ledger) == head
    finally:
        ledger.close()


def test_attribution_when_unknown_agent_or_bad_breakdown_then_refused_and_nothing_written(ledger: StakeLedger):
    ledger.open_account("alice")
    head = stored_event_count(ledger)

    with pytest.raises(UnknownAccountError):
        attribution(ledger, "nobody")
    with pytest.raises(InvalidInputError, match="market, group, feature"):
        attribution(ledger, "alice", by="artifact")
    with pytest.raises(InvalidInputError, match="agent name"):
        attribution(ledger, "bad name")

    assert stored_event_count(ledger) == head
    empty = attribution(ledger, "alice", by="feature")
    assert (empty["rows"], empty["no_features"]["positions"], empty["total"]["total_pnl_units"]) == ([], 0, "0")
