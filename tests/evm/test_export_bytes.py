"""The export's fast paths write the bytes its reference paths write, file for file.

The record encoder writes the ABI words itself, and the workers take shortcuts eth_abi
and the generic canonical JSON walk do not; each shortcut is replaced here by the
reference it stands for (eth_abi's own ``encode`` of the record tuple, the generic
``canonical_json`` walk for every payload), the ledger is
exported in one process that way, and the export of the fast code, on one process and
on two, must equal it byte for byte in every file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi import encode as abi_encode

from stakeledger.adapters.evm import canonical, parallel
from stakeledger.adapters.evm.bundle import ALL_FILES
from stakeledger.adapters.evm.export import export_ledger
from stakeledger.adapters.evm.parallel import CHUNK_RECORDS
from stakeledger.adapters.evm.records import EVENT_RECORD_ABI_TYPE, EventRecord
from stakeledger.adapters.evm.verification import verify_export
from tests.evm.hostile import build_small_ledger

# Three worker tasks, the last one partial.
TRANSFERS = CHUNK_RECORDS + CHUNK_RECORDS // 2


def _reference_encode(record: EventRecord) -> bytes:
    """What the record's bytes are defined to be: eth_abi's encoding of the record tuple."""
    return abi_encode([EVENT_RECORD_ABI_TYPE], [record.abi_values()])


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bytes")
    app = build_small_ledger(f"sqlite:///{base / 'source.db'}", transfers=TRANSFERS)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(EventRecord, "encode", _reference_encode)
            for module in (canonical, parallel):
                patch.setattr(module, "loads_canonical", lambda text: None)
            export_ledger(app, base / "reference", workers=1)
        export_ledger(app, base / "one", workers=1)
        export_ledger(app, base / "two", workers=2)
    finally:
        app.close()
    return {name: base / name for name in ("reference", "one", "two")}


@pytest.mark.parametrize("run", ["one", "two"])
def test_export_when_fast_paths_run_then_every_file_equals_the_reference_export(exports, run) -> None:
    reference = exports["reference"]
    assert (reference / "events.abi").read_bytes().count(b"\n") > 2 * CHUNK_RECORDS
    for name in ALL_FILES:
        assert (exports[run] / name).read_bytes() == (reference / name).read_bytes(), name


def test_verify_when_given_the_reference_export_then_it_passes_on_two_workers(exports) -> None:
    assert verify_export(exports["reference"], workers=2).last_seq == verify_export(exports["one"], workers=1).last_seq
