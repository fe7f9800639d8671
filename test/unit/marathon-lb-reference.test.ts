// The marathon-lb compatibility reference: README shows exactly what `turbine --longhelp` knows,
// and every flag Turbine or marathon-lb has is in it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { FOREIGN_FLAGS, SPECS } from '../../src/config/options.js';
import { LABELS, compatibilityMarkdown, flagReference, flagTableMarkdown, longHelp } from '../../src/config/marathon-lb-reference.js';

const README = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../README.md'), 'utf8');

describe('marathon-lb compatibility reference', () => {
  it("README's compatibility table is the reference's (every label and marathon-lb flag, with its status)", () => {
    assert.ok(README.includes(compatibilityMarkdown()), 'README.md: paste compatibilityMarkdown() into the compatibility section');
  });

  it("README's flag table lists every Turbine flag with its environment variable, key and default", () => {
    assert.ok(README.includes(flagTableMarkdown()), 'README.md: paste flagTableMarkdown() into the flags section');
  });

  it('every label has a status and a reason; "no effect" and "different" say why', () => {
    const names = LABELS.map((l) => l.label);
    assert.equal(new Set(names).size, names.length, 'no label twice');
    for (const l of LABELS) assert.ok(l.note.length > 10, l.label);
    for (const name of ['HAPROXY_{n}_AUTH', 'HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL', 'HAPROXY_{n}_USE_HSTS', 'HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH',
      'HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH', 'HAPROXY_{n}_HTTP_BACKEND_REDIR', 'HAPROXY_{n}_SSL_CERT', 'HAPROXY_{n}_BIND_OPTIONS', 'HAPROXY_{n}_FRONTEND_HEAD']) {
      assert.ok(names.includes(name), name);
    }
  });

  it('--longhelp names every label, every marathon-lb flag and every Turbine flag', () => {
    const text = longHelp();
    for (const l of LABELS) assert.ok(text.includes(l.label), l.label);
    for (const f of flagReference()) assert.ok(text.includes(f.flag), f.flag);
    for (const s of SPECS) assert.ok(text.includes(s.flag), s.flag);
    for (const f of FOREIGN_FLAGS) assert.ok(text.includes(f.flag), f.flag);
  });
});
