// Guards the pins of the Baileys 7 harness (`baileys7/`, a sibling package): `npm ci`
// there installs exactly baileys 7.0.0-rc14, libsignal 6.0.0, and only registry tarballs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'baileys7');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));

describe('baileys7 package pins', () => {
  it('pins exact versions of every direct dependency', () => {
    for (const [name, range] of Object.entries(pkg.dependencies)) {
      assert.match(range, /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/, `${name} must be pinned exactly, got ${range}`);
    }
  });

  it('locks baileys 7.0.0-rc14 and registry libsignal 6.0.0', () => {
    assert.equal(pkg.dependencies.baileys, '7.0.0-rc14');
    assert.equal(lock.packages['node_modules/baileys'].version, '7.0.0-rc14');
    assert.equal(pkg.overrides.libsignal, '6.0.0');
    assert.equal(lock.packages['node_modules/libsignal'].version, '6.0.0');
  });

  it('resolves no package from git or a non-registry URL', () => {
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '') {
        continue;
      }
      assert.ok(entry.integrity, `${path} has no integrity hash (not a registry tarball?)`);
      if (entry.resolved !== undefined) {
        assert.match(entry.resolved, /^https:\/\/registry\.npmjs\.org\//, `${path} resolved from ${entry.resolved}`);
      }
    }
  });
});
