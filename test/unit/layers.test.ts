// The folders of src/ are layers; an import may point down (or within a folder), never up. The
// order is the data flow of DESIGN.md: Marathon I/O -> store -> pure table -> health and proxy ->
// the primary/worker split -> admin -> wiring.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');

/** Lowest first. `.` is src/ itself (app.ts, cli.ts, signals.ts). */
const LAYERS = ['common', 'config', 'observability', 'access', 'marathon', 'discovery', 'routing', 'health', 'proxy', 'cluster', 'admin', '.', 'demo'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** The top folder of a file under src/ (`.` for src/ itself). */
function layerOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '.';
}

it('every folder of src/ has a place in the layer order', () => {
  for (const file of sources(SRC)) assert.ok(LAYERS.includes(layerOf(file)), `${relative(SRC, file)}: its folder is not in LAYERS`);
});

it('no import points from a lower layer to a higher one', () => {
  const upward: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)) {
      const to = layerOf(resolve(dirname(file), m[1]!));
      if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) upward.push(`${relative(SRC, file)} (${from}) imports ${m[1]} (${to})`);
    }
  }
  assert.deepEqual(upward, []);
});
