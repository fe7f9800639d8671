// The state file's write: atomic, and a failed one leaves nothing behind.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readStateFile, writeStateFile } from '../../src/discovery/state-file.js';

describe('state file', () => {
  it('a write whose rename fails (the path is a directory) throws and leaves no temp file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'turbine-state-'));
    const path = join(dir, 'state.json');
    mkdirSync(path);
    assert.throws(() => writeStateFile(path, []), /EISDIR|EEXIST|ENOTEMPTY/);
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  it('a good write replaces the file, and reads back', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'turbine-state-')), 'state.json');
    writeStateFile(path, []);
    writeStateFile(path, []);
    assert.deepEqual(readStateFile(path).apps, []);
  });
});
