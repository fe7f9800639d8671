// The fixtures in test/fixtures (copied from the team's shared fixtures; test/fixtures/README.md
// names each file's source), read-only.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = resolve(repoRoot, 'test/fixtures');

export function fixtureFiles(folder: string, suffix = '.json'): string[] {
  return readdirSync(join(FIXTURES, folder)).filter((f) => f.endsWith(suffix)).sort();
}

export function readFixture<T = unknown>(folder: string, file: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, folder, file), 'utf8')) as T;
}

export function readFixtureText(folder: string, file: string): string {
  return readFileSync(join(FIXTURES, folder, file), 'utf8');
}
