// Builds a StandardMerkleTree with OpenZeppelin's npm package and prints its dump, so
// the Python tests can compare their own dump with the reference one key for key.
//
//   node oz_build_tree.mjs input.json     (input: {"leafEncoding": [...], "values": [[...], ...]})
//
// The package is installed under tools/ozverify, not next to this file, so it is
// resolved from there.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../../tools/ozverify/package.json', import.meta.url));
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const tree = StandardMerkleTree.of(input.values, input.leafEncoding);
process.stdout.write(JSON.stringify(tree.dump()) + '\n');
