"""The ABI-encoded event record: one stored event in a form a contract can decode.

A record is encoded as ONE tuple, ``eth_abi.encode([EVENT_RECORD_ABI_TYPE], [fields])``,
not as the flat list of its member types. The record has dynamic members (``topic``,
``payload``), so the two forms differ: the tuple form starts with a 32-byte offset
(0x20) to the tuple body. That is the form Solidity's ``abi.encode(record)`` writes for
a struct and the form ``abi.decode(data, (Record))`` (Vyper: ``abi_decode(data, Record)``)
reads, so an exported record can be handed to a contract unchanged.

``record_hash`` is keccak256 of exactly those bytes. ``decode`` accepts only the
canonical encoding (it re-encodes and compares), so every record has one byte string
and therefore one hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from stakeledger.adapters.evm.hashing import keccak

EVENT_RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    ("seq", "uint64"),
    ("prevHash", "bytes32"),
    ("originatorId", "bytes16"),
    ("originatorVersion", "uint64"),
    ("topic", "string"),
    ("timestampMicros", "uint64"),
    ("account", "address"),
    ("credit", "uint256"),
    ("debit", "uint256"),
    ("payload", "bytes"),
)
EVENT_RECORD_ABI_TYPE = "(" + ",".join(abi_type for _, abi_type in EVENT_RECORD_FIELDS) + ")"

ZERO_HASH = bytes(32)
ZERO_ADDRESS = bytes(20)

UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1


class RecordDecodeError(ValueError):
    """The bytes are not the canonical ABI encoding of an event record."""


@dataclass(frozen=True)
class EventRecord:
    """One exported event. Field order and meaning follow EVENT_RECORD_FIELDS.

    ``account`` is the 20-byte address whose balance the event moves (ZERO_ADDRESS when
    none). ``credit`` and ``debit`` are in the ledger's base units; they keep the ABI
    names a contract sees rather than a ``_units`` suffix.
    """

    seq: int
    prev_hash: bytes
    originator_id: UUID
    originator_version: int
    topic: str
    timestamp_micros: int
    account: bytes
    credit: int
    debit: int
    payload: bytes

    def __post_init__(self) -> None:
        # Checked here so a bad value fails with its field's name, not deep in eth_abi.
        _check_uint("seq", self.seq, UINT64_MAX)
        _check_bytes("prev_hash", self.prev_hash, 32)
        if not isinstance(self.originator_id, UUID):
            raise TypeError(f"originator_id must be a UUID, not {type(self.originator_id).__name__}")
        _check_uint("originator_version", self.originator_version, UINT64_MAX)
        if not isinstance(self.topic, str):
            raise TypeError(f"topic must be a str, not {type(self.topic).__name__}")
        _check_uint("timestamp_micros", self.timestamp_micros, UINT64_MAX)
        _check_bytes("account", self.account, 20)
        _check_uint("credit", self.credit, UINT256_MAX)
        _check_uint("debit", self.debit, UINT256_MAX)
        if not isinstance(self.payload, bytes):
            raise TypeError(f"payload must be bytes, not {type(self.payload).__name__}")

    def abi_values(self) -> tuple:
        """The field values in ABI order, as eth_abi takes them."""
        # Built by hand: dataclasses.astuple deep-copies every field, which is slow here.
        return (
            self.seq,
            self.prev_hash,
            self.originator_id.bytes,
            self.originator_version,
            self.topic,
            self.timestamp_micros,
            self.account,
            self.credit,
            self.debit,
            self.payload,
        )

    def encode(self) -> bytes:
        """The record as one ABI tuple (see the module docstring)."""
        return encode_values(self.abi_values())

    def record_hash(self) -> bytes:
        """keccak256 of encode(): the value the next record's prev_hash must hold."""
        return keccak(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> EventRecord:
        """Same as decode_record: the canonical encoding only."""
        return decode_record(data)


_TUPLE_OFFSET = (32).to_bytes(32, "big")
_HEAD_BYTES = 32 * len(EVENT_RECORD_FIELDS)
# topic is the first dynamic field: its data starts right after the head.
_TOPIC_OFFSET = _HEAD_BYTES.to_bytes(32, "big")
_BYTES16_PADDING = bytes(16)
_ADDRESS_PADDING = bytes(12)


def encode_values(values: tuple) -> bytes:
    """``eth_abi.encode([EVENT_RECORD_ABI_TYPE], [values])``, byte for byte, for values
    an EventRecord has checked (``abi_values()``), written straight into the ABI layout.

    eth_abi's field encoders validate and pad every value through several Python calls
    each (about 90 % of an export's encoding time); an EventRecord has checked its
    fields already, so the words are written here with ``int.to_bytes`` and slicing.
    The layout is the ABI's: the offset of the tuple (0x20), a head of one word per
    field (a dynamic field's word is the offset of its data from the start of the head),
    then each dynamic field's length word and its data zero-padded to whole words.
    tests/evm/test_export_parallel.py holds it to eth_abi's bytes on any record."""
    seq, prev_hash, originator_id, version, topic, stamp, account, credit, debit, payload = values
    topic_data = _dynamic(topic.encode("utf-8"))
    return b"".join(
        (
            _TUPLE_OFFSET,
            seq.to_bytes(32, "big"),
            prev_hash,
            originator_id + _BYTES16_PADDING,
            version.to_bytes(32, "big"),
            _TOPIC_OFFSET,
            stamp.to_bytes(32, "big"),
            _ADDRESS_PADDING + account,
            credit.to_bytes(32, "big"),
            debit.to_bytes(32, "big"),
            (_HEAD_BYTES + len(topic_data)).to_bytes(32, "big"),
            topic_data,
            _dynamic(payload),
        )
    )


def _dynamic(data: bytes) -> bytes:
    """A dynamic ``bytes``/``string`` field's tail: its length word, then its data padded
    with zeros to a multiple of 32 bytes (nothing after the length when it is empty)."""
    return len(data).to_bytes(32, "big") + data + bytes(-len(data) % 32)


def _parse_canonical(data: bytes) -> EventRecord | None:
    """The record of a canonical encoding, read straight from its words; None when the
    bytes are not laid out as ``encode_values`` lays a record out (the caller then asks
    eth_abi, which names the problem). The caller re-encodes to prove it canonical."""
    if len(data) < 32 + _HEAD_BYTES + 64 or data[:32] != _TUPLE_OFFSET:
        return None
    data = bytes(data)  # a bytearray or memoryview's slices would not be bytes
    # Plain slices and int.from_bytes: a record's ten fields are read on every verify.
    from_bytes = int.from_bytes
    topic_at, payload_at = from_bytes(data[160:192], "big"), from_bytes(data[320:352], "big")
    if topic_at != _HEAD_BYTES or not topic_at < payload_at <= len(data) - 64:
        return None
    topic_length = from_bytes(data[32 + topic_at : 64 + topic_at], "big")
    payload_length = from_bytes(data[32 + payload_at : 64 + payload_at], "big")
    topic_start, payload_start = 64 + topic_at, 64 + payload_at
    if topic_start + topic_length > 32 + payload_at or payload_start + payload_length > len(data):
        return None
    return EventRecord(
        from_bytes(data[32:64], "big"),
        data[64:96],
        UUID(bytes=data[96:112]),
        from_bytes(data[128:160], "big"),
        data[topic_start : topic_start + topic_length].decode("utf-8"),
        from_bytes(data[192:224], "big"),
        data[236:256],
        from_bytes(data[256:288], "big"),
        from_bytes(data[288:320], "big"),
        data[payload_start : payload_start + payload_length],
    )


def decode_record(data: bytes) -> EventRecord:
    """Decode one record, refusing any encoding other than the canonical one.

    A canonical record is read straight from its words and proven canonical by encoding
    it again; anything else goes to eth_abi's decoder, whose error is the one raised."""
    try:
        fast = _parse_canonical(data)
    except (ValueError, TypeError, UnicodeDecodeError):
        fast = None
    if fast is not None and fast.encode() == data:
        return fast
    try:
        (values,) = abi_decode([EVENT_RECORD_ABI_TYPE], data)
    except (DecodingError, UnicodeDecodeError, ValueError, OverflowError) as error:
        raise RecordDecodeError(f"not an event record: {error}") from error
    seq, prev_hash, originator_id, version, topic, timestamp, account_hex, credit, debit, payload = values
    # eth_abi hands addresses back as 0x-hex text; the record holds the 20 raw bytes.
    record = EventRecord(
        seq,
        prev_hash,
        UUID(bytes=originator_id),
        version,
        topic,
        timestamp,
        bytes.fromhex(account_hex[2:]),
        credit,
        debit,
        payload,
    )
    # eth_abi tolerates non-zero padding and unusual offsets; a second byte string for
    # the same record would have a second hash, so only the canonical one is accepted.
    if record.encode() != data:
        raise RecordDecodeError("bytes are not the canonical encoding of the record they decode to")
    return record


def _check_uint(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be within 0..{maximum}, got {value}")


def _check_bytes(name: str, value: bytes, length: int) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")
