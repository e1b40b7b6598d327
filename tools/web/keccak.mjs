// The one hash the page needs from @noble/hashes: keccak256, exposed to the page's own
// scripts as window.stakeledgerKeccak.keccak256(Uint8Array) -> Uint8Array (32 bytes).
import { keccak_256 } from '@noble/hashes/sha3.js';

globalThis.stakeledgerKeccak = Object.freeze({ keccak256: bytes => keccak_256(bytes) });
