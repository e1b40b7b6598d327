"""Pinning who signed an export: ``verify``/``import --signer ADDRESS`` and ``--require-signature``
(issue 20, item 8). Unpinned, a pass proves integrity only; pinned, an unsigned export or one
signed by another key is refused and nothing is imported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stakeledger.adapters.evm.bundle import HEADER, MANIFEST, ExportInvalidError, json_document
from stakeledger.adapters.evm.importer import import_export, stored_event_count
from stakeledger.adapters.evm.verification import verify_export
from stakeledger.domain.errors import InvalidInputError
from tests.evm.hostile import KEY_A, KEY_B, SIGNER_A, SIGNER_B, make_export, refresh_manifest_entry, run_cli


@pytest.fixture(scope="module")
def signed_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("signed")
    exports = {}
    for name, key in (("a", KEY_A), ("b", KEY_B)):
        exports[name] = root / name
        make_export(exports[name], signing_key=key)
    return exports


def copy_of(signed_exports: dict[str, Path], name: str, tmp_path: Path) -> Path:
    copy = tmp_path / f"export-{name}"
    shutil.copytree(signed_exports[name], copy)
    return copy


def set_signature(directory: Path, signature: str | None, signer: str | None) -> None:
    """Rewrite header.json's signature and signer and fix the manifest to match, as a forger would."""
    document = json.loads((directory / HEADER).read_text())
    document["signature"], document["signer"] = signature, signer
    (directory / HEADER).write_bytes(json_document(document))
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["header"]["signer"] = signer
    (directory / MANIFEST).write_bytes(json_document(manifest))
    refresh_manifest_entry(directory, HEADER)


def test_verify_when_signer_pinned_and_the_export_is_signed_by_it_then_ok_and_says_pinned(
    signed_exports: dict[str, Path], durable_store_url: str, capsys, monkeypatch
) -> None:
    directory = signed_exports["a"]

    code, out, err = run_cli(capsys, monkeypatch, "verify", str(directory), "--signer", SIGNER_A.lower())

    assert code == 0, err
    text = " ".join(out.split())  # rich wraps long lines
    assert f"signed by the pinned signer {SIGNER_A}" in text and "integrity, not origin" not in text
    code, out, err = run_cli(capsys, monkeypatch, "--json", "verify", str(directory), "--signer", SIGNER_A)
    assert code == 0 and json.loads(out)["signerPinned"] is True, err
    summary = import_export(directory, durable_store_url, signer=SIGNER_A)
    assert summary.audit_clean and stored_event_count(durable_store_url) == summary.events


def test_verify_when_unpinned_then_ok_says_integrity_not_origin(
    signed_exports: dict[str, Path], capsys, monkeypatch
) -> None:
    code, out, err = run_cli(capsys, monkeypatch, "verify", str(signed_exports["b"]))

    assert code == 0, err
    text = " ".join(out.split())  # rich wraps long lines
    assert "proves integrity, not origin" in text and "--signer ADDRESS" in text
    code, out, _ = run_cli(capsys, monkeypatch, "--json", "verify", str(signed_exports["b"]))
    assert json.loads(out)["signerPinned"] is False


def test_verify_when_signature_nulled_and_manifest_fixed_then_only_a_pin_or_requirement_refuses(
    signed_exports: dict[str, Path], tmp_path: Path, durable_store_url: str, capsys, monkeypatch
) -> None:
    directory = copy_of(signed_exports, "a", tmp_path)
    set_signature(directory, None, None)
    assert verify_export(directory).signer is None  # consistent: integrity holds, origin is unknown

    for options in (["--signer", SIGNER_A], ["--require-signature"]):
        code, _, err = run_cli(capsys, monkeypatch, "verify", str(directory), *options)
        assert code == 1, options
        assert err.startswith("error: EXPORT_INVALID: header.json: the export is unsigned"), err
        code, _, err = run_cli(capsys, monkeypatch, "import", str(directory), "--db", durable_store_url, *options)
        assert code == 1 and "the export is unsigned" in err, err
        assert stored_event_count(durable_store_url) == 0


def test_verify_when_signed_by_another_key_then_the_pinned_signer_refuses_and_import_writes_nothing(
    signed_exports: dict[str, Path], durable_store_url: str, capsys, monkeypatch
) -> None:
    directory = signed_exports["b"]

    code, out, err = run_cli(capsys, monkeypatch, "--json", "verify", str(directory), "--signer", SIGNER_A)

    assert code == 1
    assert json.loads(out)["file"] == HEADER
    assert f"signed by {SIGNER_B}, not by the pinned signer {SIGNER_A}" in err
    with pytest.raises(ExportInvalidError, match="not by the pinned signer"):
        import_export(directory, durable_store_url, signer=SIGNER_A)
    assert stored_event_count(durable_store_url) == 0
    assert verify_export(directory, require_signature=True).signer == SIGNER_B  # any signer, when not pinned


def test_verify_when_header_claims_the_pinned_signer_but_another_key_signed_then_refused(
    signed_exports: dict[str, Path], tmp_path: Path, durable_store_url: str
) -> None:
    directory = copy_of(signed_exports, "b", tmp_path)
    signature = json.loads((directory / HEADER).read_text())["signature"]
    set_signature(directory, signature, SIGNER_A)

    with pytest.raises(ExportInvalidError, match=f"recovers to {SIGNER_B}, not to the signer {SIGNER_A}"):
        verify_export(directory, signer=SIGNER_A)
    with pytest.raises(ExportInvalidError):
        import_export(directory, durable_store_url, signer=SIGNER_A)
    assert stored_event_count(durable_store_url) == 0


@pytest.mark.parametrize(
    "signer", ["0x1234", SIGNER_A.replace("f39F", "F39f"), "f39fd6e51aad88f6f4ce6ab8827279cfffb92266"]
)
def test_verify_when_signer_is_not_an_address_then_invalid_input_and_nothing_written(
    signer: str, signed_exports: dict[str, Path], tmp_path: Path, capsys, monkeypatch
) -> None:
    target = tmp_path / "target.db"

    code, _, err = run_cli(capsys, monkeypatch, "verify", str(signed_exports["a"]), "--signer", signer)

    assert code == 1 and err.startswith("error: INVALID_INPUT: --signer"), err
    with pytest.raises(InvalidInputError):
        import_export(signed_exports["a"], f"sqlite:///{target}", signer=signer)
    assert not target.exists()
