// Starts a real `sluice serve` (SLUICE_BIN) on a free port with a temporary data dir and a manifest,
// and waits on conditions with deadlines.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BUILD = path.resolve(process.env.SLUICE_BUILD ?? path.join(here, '../../build'));
export const BIN = path.resolve(process.env.SLUICE_BIN ?? path.join(BUILD, 'sluice'));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export async function waitFor(condition, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

export async function startSluice(manifest, extraArgs = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-'));
  const file = path.join(dir, 'manifest.yaml');
  writeFileSync(file, manifest);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const child = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data'),
    '--apply', file, ...extraArgs], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  let gone = false;
  const exited = new Promise((resolve) => child.on('exit', (code) => { gone = true; resolve(code); }));
  try {
    await waitFor(async () => {
      if (gone) throw new Error('sluice exited');
      return (await fetch(`${url}/readyz`)).ok;
    }, { timeoutMs: 15000, what: 'sluice /readyz' });
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n${log}`);
  }
  return {
    url,
    port,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function agentManifest(name, program, { protocol, initialScale = 1, minScale = 0, env = [] } = {}) {
  const envLines = env.map(([k, v]) => `        - {name: ${k}, value: "${v}"}`).join('\n');
  return `apiVersion: sluice.dev/v1
kind: Agent
metadata:
  name: ${name}
spec:
  template:
    metadata:
      annotations:
        sluice.dev/protocol: ${protocol}
        autoscaling.knative.dev/initial-scale: "${initialScale}"
        autoscaling.knative.dev/min-scale: "${minScale}"
    spec:
      containerConcurrency: 10
      containers:
      - command: [${path.join(BUILD, program)}]
${envLines ? `        env:\n${envLines}\n` : ''}        readinessProbe:
          httpGet: {path: /healthz}
---
`;
}

// The broker `default` and one Trigger per entry: {name, type, subscriber (a YAML flow mapping, e.g.
// `{uri: http://…}` or `{ref: {…, kind: Agent, name: x}}`), delivery (optional YAML lines)}.
export function brokerManifest(triggers) {
  let out = `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
`;
  for (const t of triggers) {
    out += `---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: ${t.name}
spec:
  broker: default
  filter:
    attributes: {type: ${t.type}}
  subscriber: ${t.subscriber}
${t.delivery ? `  delivery:\n${t.delivery}\n` : ''}`;
  }
  return out;
}

// A trigger subscriber that is the agent `name`.
export const agentRef = (name) => `{ref: {apiVersion: sluice.dev/v1, kind: Agent, name: ${name}}}`;
