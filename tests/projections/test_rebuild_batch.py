"""The rebuild's own read of the log: every record decoded exactly as the application's
mapper decodes it, and a record the fast path cannot decode handed to the mapper."""

from __future__ import annotations

import pytest

from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.log import iter_notifications
from stakeledger.projections.runner import Runner, _EventDecoder, _RecordReader
from stakeledger.projections.store import ViewStore
from tests.projections.scenario import bulk_log, head, run_scenario, view_rows


def _decoded_by_runner(app: StakeLedger, page_size: int) -> list[tuple[int, type, dict]]:
    reader, decoder = _RecordReader(app.recorder), _EventDecoder(app.mapper, app.recorder)
    out, cursor, end = [], 0, head(app)
    while cursor < end:
        records = reader.select(cursor, end, page_size)
        for record in records:
            event = decoder.decode(*record)
            out.append((record[0], type(event), vars(event)))
        cursor = records[-1][0]
    return out


def test_runner_read_when_log_is_varied_then_every_event_equals_the_mappers(
    ledger: StakeLedger, clock: ManualClock
) -> None:
    run_scenario(ledger, clock)
    bulk_log(ledger, clock, 600)
    expected = [
        (n.id, type(event), vars(event))
        for n in iter_notifications(ledger, page_size=97)
        for event in [ledger.mapper.to_domain_event(n)]
    ]
    assert len(expected) == head(ledger) > 600
    assert _decoded_by_runner(ledger, 97) == expected
    # The topics the scenario wrote all went the fast way, not through the mapper.
    decoder = _EventDecoder(ledger.mapper, ledger.recorder)
    assert decoder.fast
    assert len({cls for _, cls, _ in expected}) > 8


def test_runner_read_when_a_record_needs_the_library_then_its_error_is_the_mappers(ledger: StakeLedger) -> None:
    decoder = _EventDecoder(ledger.mapper, ledger.recorder)
    record = _RecordReader(ledger.recorder).select(0, head(ledger), 1)[0]
    bad_state = b'{"timestamp":{"_type_":"no_such_type","_data_":"x"}}'
    with pytest.raises(Exception) as fast:
        decoder.decode(record[0], record[1], record[2], record[3], bad_state)
    notification = next(iter_notifications(ledger, page_size=1))
    with pytest.raises(Exception) as library:
        ledger.mapper.to_domain_event(type(notification)(**{**vars(notification), "state": bad_state}))
    assert type(fast.value) is type(library.value) and str(fast.value) == str(library.value)


def test_rebuild_when_run_twice_with_other_page_sizes_then_rows_are_identical(
    ledger: StakeLedger, clock: ManualClock, store: ViewStore
) -> None:
    run_scenario(ledger, clock)
    bulk_log(ledger, clock, 400)
    first = Runner(ledger, store, page_size=50).rebuild()
    rows = view_rows(store)
    second = Runner(ledger, store, page_size=1_000).rebuild()
    assert first.head == second.head == head(ledger)
    assert view_rows(store) == rows
    assert any(rows.values())


@pytest.mark.parametrize(
    "state",
    [
        b'{"a":1,"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05+00:00"}}',
        b'{"id":{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"},"n":{"_type_":"decimal_str","_data_":"1.5"}}',
        # Typed values below the top level, a typed value holding an object, the text "_type_".
        b'{"list":[{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"}],"x":2}',
        b'{"deep":{"inner":{"_type_":"decimal_str","_data_":"2"}}}',
        b'{"odd":{"_type_":"decimal_str","_data_":"3","extra":1},"s":"_type_"}',
        b'{"name":"_type_"}',
        b'{"_type_":"decimal_str","_data_":"4"}',
        b"[1,2]",
        b'{"refs":{}}',
    ],
)
def test_runner_state_decoding_when_typed_values_sit_anywhere_then_equals_the_transcoder(
    ledger: StakeLedger, state: bytes
) -> None:
    decoder = _EventDecoder(ledger.mapper, ledger.recorder)
    assert decoder.decode_state(state.decode(), state) == ledger.mapper.transcoder.decode(state)


def test_runner_state_decoding_when_a_topics_typed_keys_change_then_each_equals_the_transcoder(
    ledger: StakeLedger,
) -> None:
    """The keys one state of a topic had typed are tried first on the next: a state whose
    typed values sit elsewhere, or are fewer, more or nested, is still decoded exactly."""
    decoder = _EventDecoder(ledger.mapper, ledger.recorder)
    stamp = '{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05+00:00"}'
    uuid = '{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"}'
    states = [
        f'{{"timestamp":{stamp},"n":1}}',
        f'{{"timestamp":{stamp},"n":2}}',
        f'{{"timestamp":{stamp},"id":{uuid}}}',
        f'{{"id":{uuid},"timestamp":"plain"}}',
        f'{{"timestamp":{stamp},"s":"_type_"}}',
        f'{{"timestamp":{stamp},"deep":[{uuid}]}}',
        f'{{"timestamp":{stamp},"x":{{"inner":{uuid}}}}}',
        f'{{"timestamp":{stamp},"n":3}}',
        f' {{"timestamp":{stamp}}} ',
    ]
    known: list = [None]
    for text in states:
        data = text.encode()
        assert decoder.decode_state(text, data, known) == ledger.mapper.transcoder.decode(data), text
