"""``GET /api/portfolio/{agent}/attribution`` (issue 19): P&L by market, group or feature over
HTTP, totalling the summary endpoint's realised + unrealised to the unit; a private read (the
agent's key or an admin key: 401 without one, 403 with another agent's); 404 for an unknown
agent and 422 for bad parameters, with nothing written. On the in-memory store, SQLite and
PostgreSQL (``api``) or in memory alone (``memory_api``)."""

from __future__ import annotations

from typing import Any

import pytest

from stakeledger.domain.rules.rationale import Rationale
from stakeledger.domain.vocabulary import WAD
from tests.api.conftest import ART, TOKEN, Api

PATH = "/api/portfolio/alice/attribution"
CENT = WAD // 100


def held(api: Api) -> None:
    """alice: ART-1 (bio) long with features, partly sold; ART-2 (no group) short, no rationale."""
    api.ledger.list_artifact("ART-2", "Another result", 100 * TOKEN)
    features = Rationale(features={"fg_lo": 12 * CENT, "news_lo": -6 * CENT})
    opened = api.ledger.open_position("alice", ART, "long", 30 * TOKEN, rationale=features)
    api.ledger.open_position("alice", "ART-2", "short", 10 * TOKEN)
    api.ledger.open_position("bob", ART, "short", 8 * TOKEN)
    api.ledger.close_position(opened["position"], shares_units=int(opened["shares_units"]) // 4)


def test_attribution_when_each_breakdown_then_totals_are_the_summary_and_nothing_is_written(api):
    held(api)
    summary = api.get("/api/portfolio/alice/summary", api.alice).json()
    head = api.head()

    bodies: dict[str, Any] = {}
    for by in ("market", "group", "feature"):
        response = api.get(PATH, api.alice, params={"by": by})
        assert response.status_code == 200, response.text
        bodies[by] = response.json()

    assert api.head() == head
    for body in bodies.values():
        assert body["total"]["realized_pnl_units"] == summary["realized_pnl_units"]
        assert body["total"]["unrealized_pnl_units"] == summary["unrealized_pnl_units"]
        assert body["total"]["total_pnl_units"] == summary["total_pnl_units"]
        assert body["total"]["total_pnl"] == summary["total_pnl"]  # the token twin, as everywhere
    assert int(summary["realized_pnl_units"]) != 0
    assert [(r["artifact"], r["group"]) for r in bodies["market"]["rows"]] == [(ART, "bio"), ("ART-2", "(none)")]
    assert [r["group"] for r in bodies["group"]["rows"]] == ["bio", "(none)"]
    features = bodies["feature"]
    fg, news = features["rows"]
    assert (fg["feature"], news["feature"]) == ("fg_lo", "news_lo")
    art = bodies["market"]["rows"][0]
    assert int(fg["pnl_units"]) + int(news["pnl_units"]) == int(art["total_pnl_units"])
    assert abs(int(fg["pnl_units"]) - 2 * int(news["pnl_units"])) <= 2  # 12 : 6
    assert features["no_features"]["pnl_units"] == bodies["market"]["rows"][1]["total_pnl_units"]
    assert (fg["material_positions"], news["material_positions"]) == (1, 1)


def test_attribution_when_thresholds_given_then_they_apply_repeated_or_comma_separated(memory_api):
    api = memory_api
    held(api)

    repeated = api.get(PATH, api.alice, params=[("by", "feature"), ("material_for", "news_lo:0.1"), ("material", "0")])
    commas = api.get(PATH, api.alice, params={"by": "feature", "material_for": "news_lo:0.1,fg_lo:0.2"})

    assert repeated.status_code == commas.status_code == 200, (repeated.text, commas.text)
    rows = {row["feature"]: row for row in repeated.json()["rows"]}
    assert (rows["news_lo"]["material_positions"], rows["news_lo"]["not_material_positions"]) == (0, 1)
    assert rows["fg_lo"]["threshold_wad"] == "0" and rows["news_lo"]["threshold_wad"] == str(10 * CENT)
    assert repeated.json()["material_for_wad"] == {"news_lo": str(10 * CENT)}
    assert [row["material_positions"] for row in commas.json()["rows"]] == [0, 0]  # 0.12 < 0.2, 0.06 < 0.1


def test_attribution_when_no_key_or_another_agents_key_then_401_or_403_and_an_admin_may_read(memory_api):
    api = memory_api
    held(api)
    head = api.head()

    assert api.get(PATH).status_code == 401
    assert api.get(PATH, "sl_not_a_key").status_code == 401
    forbidden = api.get(PATH, api.bob)
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "FORBIDDEN")
    assert api.get(PATH, api.admin).status_code == 200
    assert api.get("/api/portfolio/bob/attribution", api.bob).status_code == 200
    assert api.head() == head


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"by": "artifact"}, "attribution is by one of market, group, feature"),
        ({"material": "-0.05"}, "material is a size in log-odds and must not be negative"),
        ({"material": "NaN"}, "material must be a plain decimal number"),
        ({"material": "0.0000000000000000001"}, "material has 19 decimals"),
        ({"material": "1e-2"}, "material must be a plain decimal number"),
        ({"material_for": "news_lo=0.1"}, "material_for is written NAME:VALUE"),
        ({"material_for": "News:0.1"}, "material_for: feature names are"),
        ({"material_for": "news_lo:0.1,news_lo:0.2"}, "given twice"),
        ({"material_for": ",".join(f"f{i}:0.1" for i in range(33))}, "at most 32"),
        ({"material": "0" * 65}, "query.material"),
    ],
)
def test_attribution_when_bad_parameters_then_422_and_nothing_written(memory_api, params, words):
    api = memory_api
    head = api.head()

    response = api.get(PATH, api.alice, params=params)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "INVALID_INPUT"
    assert words in response.json()["message"]
    assert api.head() == head


def test_attribution_when_unknown_agent_then_404_for_an_admin_and_403_for_a_trader(memory_api):
    api = memory_api
    head = api.head()

    unknown = api.get("/api/portfolio/nobody/attribution", api.admin)

    assert (unknown.status_code, unknown.json()["error"]) == (404, "UNKNOWN_ACCOUNT")
    assert api.get("/api/portfolio/nobody/attribution", api.alice).status_code == 403
    assert api.get("/api/portfolio/bad%20name/attribution", api.admin).status_code == 422
    assert api.head() == head
