// The official MCP conformance suite (@modelcontextprotocol/conformance, pinned with the Node.js 22 it
// needs in tests/conformance/package.json) against `sluice serve`'s /mcp, with the example MCP agent
// behind it. Every scenario of the suite's active set must pass except those listed, with their reasons,
// in tests/conformance/expected-failures.yaml; a listed scenario that starts passing fails the run too.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { agentManifest, startSluice } from './support.mjs';

const suite = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../conformance');
const bin = path.join(suite, 'node_modules/.bin');

function runSuite(url) {
  return new Promise((resolve) => {
    execFile(path.join(bin, 'conformance'),
      ['server', '--url', `${url}/mcp`, '--expected-failures', path.join(suite, 'expected-failures.yaml')],
      { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1' }, timeout: 150000,
        maxBuffer: 16 << 20 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, output: stdout + stderr }));
  });
}

describe('MCP conformance suite', { timeout: 180000 }, () => {
  let sluice;
  before(async () => {
    sluice = await startSluice(agentManifest('calc', 'mcp_agent', { protocol: 'mcp' }));
  });
  after(async () => sluice?.stop());

  test('passes every applicable server scenario', { timeout: 170000 }, async () => {
    assert.ok(existsSync(path.join(bin, 'conformance')),
      `${bin}/conformance is missing: run scripts/install-deps.sh (make test does)`);
    const { code, output } = await runSuite(sluice.url);
    assert.equal(code, 0, output);
    assert.match(output, /Baseline check passed/, output);
    for (const s of ['server-initialize', 'ping', 'tools-list', 'logging-set-level',
      'server-sse-multiple-streams', 'dns-rebinding-protection'])
      assert.match(output, new RegExp(`✓ ${s}: [1-9]\\d* passed, 0 failed`), output);
  });
});
