// Guards the pins: `npm ci` must install only from the npm registry, with the
// exact Baileys version and libsignal from the registry (not Baileys' git URL).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));

describe('package pins', () => {
  it('pins exact versions of every direct dependency', () => {
    for (const [name, range] of Object.entries(pkg.dependencies)) {
      assert.match(range, /^\d+\.\d+\.\d+$/, `${name} must be pinned exactly, got ${range}`);
    }
  });

  it('locks the pinned Baileys and registry libsignal 6.0.0', () => {
    assert.equal(lock.packages['node_modules/@whiskeysockets/baileys'].version, pkg.dependencies['@whiskeysockets/baileys']);
    assert.equal(pkg.overrides.libsignal, '6.0.0');
    const libsignal = lock.packages['node_modules/libsignal'];
    assert.equal(libsignal.version, '6.0.0');
    assert.ok(libsignal.integrity?.startsWith('sha512-'), 'libsignal comes from the registry with an integrity hash');
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
      assert.ok(!String(entry.version).includes(':'), `${path} version ${entry.version} is a URL`);
    }
  });
});
