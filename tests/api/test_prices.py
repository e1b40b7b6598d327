"""GET .../candles and .../trades: the shapes the web page reads, paging and refusals."""

from __future__ import annotations

from tests.api.conftest import ART, TOKEN


def trade_some(api, count: int = 4) -> None:
    for number in range(count):
        api.ledger.open_position("alice", ART, "long" if number % 2 == 0 else "short", (number + 1) * TOKEN)
        api.clock.advance(seconds=600)


def test_candles_when_trades_happened_then_buckets_come_oldest_first_with_prices_volume_and_count(api):
    trade_some(api)
    answer = api.get(f"/api/market/artifacts/{ART}/candles", params={"interval": "5m"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["artifact"] == ART and body["interval"] == "5m"
    candles = body["candles"]
    assert [candle["trades"] for candle in candles] == [1, 1, 1, 1]
    assert [candle["volume"] for candle in candles] == ["1", "2", "3", "4"]
    assert [candle["volume_units"] for candle in candles] == [str(n * TOKEN) for n in (1, 2, 3, 4)]
    assert candles == sorted(candles, key=lambda candle: candle["start"])
    first = candles[0]
    assert first["open"] == "0.500000" and first["open_wad"] == str(5 * 10**17)
    assert int(first["high_wad"]) >= int(first["close_wad"]) >= int(first["low_wad"])
    hourly = api.get(f"/api/market/artifacts/{ART}/candles", params={"interval": "1h"}).json()["candles"]
    assert sum(candle["trades"] for candle in hourly) == 4
    later = api.get(
        f"/api/market/artifacts/{ART}/candles", params={"interval": "5m", "since": candles[2]["start"]}
    ).json()
    assert later["candles"] == candles[2:]


def test_trades_when_paged_with_before_then_each_page_is_newest_first_and_next_before_ends_at_none(api):
    trade_some(api, 5)
    seen = []
    before = None
    for _ in range(5):
        params = {"limit": 2} if before is None else {"limit": 2, "before": before}
        body = api.get(f"/api/market/artifacts/{ART}/trades", params=params).json()
        seen.extend(body["trades"])
        before = body["next_before"]
        if before is None:
            break
    assert [trade["tokens"] for trade in seen] == ["5", "4", "3", "2", "1"]
    positions = [trade["position"] for trade in seen]
    assert positions == sorted(positions, reverse=True)
    newest = seen[0]
    assert newest["side"] == "long" and newest["kind"] == "buy" and newest["taker"] == "alice"
    assert newest["tokens_units"] == str(5 * TOKEN)
    assert newest["price_before"] == seen[1]["price_after"]
    assert set(newest) >= {"position", "at", "side", "kind", "tokens", "shares", "price_before", "price_after", "taker"}


def test_prices_when_the_artifact_interval_or_limit_is_wrong_then_the_usual_errors_and_nothing_written(memory_api):
    api = memory_api
    head = api.head()
    cases = [
        ("/api/market/artifacts/NOPE/candles", {}, 404, "UNKNOWN_ARTIFACT"),
        ("/api/market/artifacts/NOPE/trades", {}, 404, "UNKNOWN_ARTIFACT"),
        (f"/api/market/artifacts/{ART}/candles", {"interval": "2h"}, 422, "INVALID_INTERVAL"),
        (f"/api/market/artifacts/{ART}/candles", {"since": "soon"}, 422, "INVALID_INPUT"),
        (f"/api/market/artifacts/{ART}/trades", {"limit": 0}, 422, "INVALID_INPUT"),
        (f"/api/market/artifacts/{ART}/trades", {"limit": 10_001}, 422, "INVALID_INPUT"),
        (f"/api/market/artifacts/{ART}/trades", {"before": -3}, 422, "INVALID_INPUT"),
    ]
    for path, params, status, code in cases:
        answer = api.get(path, params=params)
        assert (answer.status_code, answer.json()["error"]) == (status, code), (path, params, answer.text)
        assert answer.json()["message"]
    assert api.head() == head
