// Copies the chart library and bundles keccak256 into the page's vendor folder:
//
//   node tools/web/build.mjs api/web/static/vendor
//
// Run by `make web-assets` after `npm ci --prefix tools/web`; nothing here is fetched at
// page load from anywhere but the server itself.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node build.mjs OUT_DIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const uplot = join(here, 'node_modules', 'uplot', 'dist');
copyFileSync(join(uplot, 'uPlot.iife.min.js'), join(out, 'uPlot.iife.min.js'));
copyFileSync(join(uplot, 'uPlot.min.css'), join(out, 'uPlot.min.css'));

await build({
  entryPoints: [join(here, 'keccak.mjs')],
  outfile: resolve(out, 'keccak.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'inline',
  logLevel: 'warning',
});
