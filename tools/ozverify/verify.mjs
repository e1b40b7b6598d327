// Checks a StandardMerkleTree dump with OpenZeppelin's own @openzeppelin/merkle-tree:
// the dump loads and validates, its root is the expected one, and a proof for one
// value verifies. Prints one JSON object; exits 0 when every check passes, 1 when a
// check fails, 2 on bad usage or unreadable input.
//
//   node verify.mjs --dump tree.json --root 0x… --index 3 [--proof proof.json]
//
// --index is a position in the dump's "values" array. --proof names a JSON array of
// 0x-hex nodes made elsewhere (e.g. by the Python exporter); it must equal the proof
// the npm package derives itself, and it must verify.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      dump: { type: 'string' },
      root: { type: 'string' },
      index: { type: 'string' },
      proof: { type: 'string' },
    },
    strict: true,
  }));
  if (!args.dump || !args.root || args.index === undefined || !/^[0-9]+$/.test(args.index)) {
    throw new Error('usage: node verify.mjs --dump FILE --root 0xHEX --index N [--proof FILE]');
  }
} catch (error) {
  finish({ ok: false, error: String(error.message ?? error) }, 2);
}

const index = Number(args.index);
// The npm package compares hex strings, so the expected root is compared lowercase.
const expectedRoot = args.root.toLowerCase();
const checks = {};
const errors = [];
let tree;
let suppliedProof;
try {
  tree = StandardMerkleTree.load(JSON.parse(readFileSync(args.dump, 'utf8')));
  if (args.proof) suppliedProof = JSON.parse(readFileSync(args.proof, 'utf8'));
} catch (error) {
  finish({ ok: false, error: `cannot load: ${error.message ?? error}` }, 2);
}

try {
  tree.validate();
  checks.validate = true;
} catch (error) {
  checks.validate = false;
  errors.push(`validate: ${error.message ?? error}`);
}

checks.root = tree.root === expectedRoot;

let value;
let derivedProof;
try {
  value = tree.at(index);
  if (value === undefined) throw new Error(`index ${index} is out of range (${tree.length} values)`);
  derivedProof = tree.getProof(index);
  const verifies = proof => StandardMerkleTree.verify(expectedRoot, tree.leafEncoding, value, proof);
  checks.derivedProofVerifies = verifies(derivedProof);
  if (suppliedProof !== undefined) {
    checks.suppliedProofEqualsDerived = JSON.stringify(suppliedProof) === JSON.stringify(derivedProof);
    checks.suppliedProofVerifies = verifies(suppliedProof);
  }
} catch (error) {
  checks.proof = false;
  errors.push(`proof: ${error.message ?? error}`);
}

const ok = Object.values(checks).every(passed => passed === true);
finish({ ok, root: tree.root, index, value, proof: derivedProof, checks, errors }, ok ? 0 : 1);
