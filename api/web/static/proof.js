// Checks a balance proof in the browser, the way OpenZeppelin's MerkleProof does, with
// keccak256 from the vendored @noble/hashes bundle (window.stakeledgerKeccak):
//
//   leaf = keccak256(keccak256(abi.encode(address account, uint256 balance)))
//   node = keccak256(min(a, b) ‖ max(a, b))   (pairs sorted as unsigned 256-bit numbers)
//
// and the proof is valid when folding the leaf with every proof node gives the root.
// Nothing is trusted from the server's own verdict: the page recomputes every hash.
(function () {
  'use strict';

  const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
  const NODE = /^0x[0-9a-fA-F]{64}$/;
  const DIGITS = /^(0|[1-9][0-9]{0,77})$/;
  const UINT256_MAX = (1n << 256n) - 1n;

  function bytesOfHex(hex) {
    const body = hex.slice(2);
    const out = new Uint8Array(body.length / 2);
    for (let i = 0; i < out.length; i += 1) out[i] = parseInt(body.substr(2 * i, 2), 16);
    return out;
  }

  function hexOfBytes(bytes) {
    return '0x' + Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  }

  function keccak(bytes) {
    const lib = globalThis.stakeledgerKeccak;
    if (!lib) throw new Error('keccak256 is not loaded (static/vendor/keccak.js: run make web-assets)');
    return lib.keccak256(bytes);
  }

  function concat(a, b) {
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  // Big-endian bytes compare as the unsigned numbers they spell.
  function compare(a, b) {
    for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  }

  function word(value) {
    const out = new Uint8Array(32);
    let rest = value;
    for (let i = 31; i >= 0; i -= 1) {
      out[i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
    return out;
  }

  // abi.encode(address, uint256): the address left-padded to 32 bytes, then the number.
  function balanceLeaf(address, balance) {
    const encoded = concat(concat(new Uint8Array(12), bytesOfHex(address)), word(balance));
    return keccak(keccak(encoded));
  }

  function hashPair(a, b) {
    return keccak(compare(a, b) <= 0 ? concat(a, b) : concat(b, a));
  }

  // {valid, reason, leaf, computedRoot}: valid only when every field is well formed and
  // the leaf folded with the proof gives exactly ``root``.
  function verifyBalanceProof(document, root) {
    const refuse = reason => ({ valid: false, reason, leaf: null, computedRoot: null });
    if (document === null || typeof document !== 'object') return refuse('the proof is not a JSON object');
    const { address, balance, proof } = document;
    if (typeof address !== 'string' || !ADDRESS.test(address)) return refuse('address is not 0x + 40 hex digits');
    if (typeof balance !== 'string' || !DIGITS.test(balance) || BigInt(balance) > UINT256_MAX) {
      return refuse('balance is not a uint256 in decimal digits');
    }
    if (!Array.isArray(proof) || !proof.every(node => typeof node === 'string' && NODE.test(node))) {
      return refuse('proof is not a list of 0x + 64 hex digit nodes');
    }
    if (typeof root !== 'string' || !NODE.test(root)) return refuse('the root is not 0x + 64 hex digits');
    const leaf = balanceLeaf(address, BigInt(balance));
    let node = leaf;
    for (const sibling of proof) node = hashPair(node, bytesOfHex(sibling));
    const computedRoot = hexOfBytes(node);
    const valid = computedRoot === root.toLowerCase();
    return {
      valid,
      reason: valid ? 'the leaf and proof give the balances root' : 'the leaf and proof give another root',
      leaf: hexOfBytes(leaf),
      computedRoot,
    };
  }

  globalThis.stakeledgerProof = Object.freeze({ verifyBalanceProof, balanceLeaf: (a, b) => hexOfBytes(balanceLeaf(a, BigInt(b))) });
})();
