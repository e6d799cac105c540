#!/usr/bin/env node
// weft-guest-build [ENTRY] [-o OUT.wasm] [--wit DIR]: bundles a processor module with its
// imports (esbuild) and makes it a component (componentize-js), importing only what the
// weft host links.
//
// Why not `jco componentize`: jco 1.35 runs its bundled tools under preview2-shim 0.26,
// which grants them no preopened directory, so reading the WIT fails ("os error 44").
// componentize-js's API takes the WIT as text instead, which needs no filesystem.
// Why `disableFeatures: ['http', 'fetch-event']`: by default the component imports
// wasi:http, which the host does not link; a processor has no network anyway.

import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { componentize } from '@bytecodealliance/componentize-js';
import { build } from 'esbuild';

const sdk = dirname(dirname(fileURLToPath(import.meta.url)));

function usage(message) {
  console.error(`weft-guest-build: ${message}\nusage: weft-guest-build [ENTRY.js] [-o OUT.wasm] [--wit DIR]`);
  process.exit(2);
}

const args = process.argv.slice(2);
let entry = 'src/processor.js';
let out;
let witDir = 'wit';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-o' || args[i] === '--out') out = args[++i];
  else if (args[i] === '--wit') witDir = args[++i];
  else if (args[i].startsWith('-')) usage(`unknown option ${args[i]}`);
  else entry = args[i];
}
if (!out) {
  const pkg = JSON.parse(await readFile('package.json', 'utf8').catch(() => '{}'));
  out = `${pkg.name || 'processor'}.wasm`;
}

const witFiles = (await readdir(witDir).catch(() => usage(`no WIT folder ${witDir}`))).filter((f) => f.endsWith('.wit'));
if (witFiles.length !== 1) usage(`${witDir} must hold exactly one .wit file (weft's processor.wit)`);
const witWorld = await readFile(join(witDir, witFiles[0]), 'utf8');

const started = Date.now();
await mkdir('dist', { recursive: true });
const bundle = resolve('dist', 'bundle.js');
await build({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile: bundle,
  external: ['weft:*'],
  logLevel: 'warning',
  plugins: [
    {
      name: 'weft-util-shim',
      setup(b) {
        b.onResolve({ filter: /^util\/?$/ }, () => ({ path: join(sdk, 'src', 'util-shim.js') }));
      },
    },
  ],
  // StarlingMonkey traps when a module asks for entropy while Wizer pre-initialises the
  // component, and avsc seeds a generator with Math.random() as it loads: a fixed value
  // during initialisation, the real one once every module has loaded.
  banner: { js: 'const __weftRandom = Math.random; Math.random = () => 0.5;' },
  footer: { js: 'Math.random = __weftRandom;' },
});

const { component } = await componentize({
  sourcePath: bundle,
  witWorld,
  worldName: 'processor',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
const mb = (component.byteLength / 1e6).toFixed(1);
console.log(`wrote ${out} (${mb} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
