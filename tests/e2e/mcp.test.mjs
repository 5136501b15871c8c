// @modelcontextprotocol/sdk's Client with StreamableHTTPClientTransport against `sluice serve`'s /mcp,
// whose tools come from the example MCP agent (build/mcp_agent) run by Sluice.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { agentManifest, startSluice, waitFor } from './support.mjs';

async function connect(url) {
  const client = new Client({ name: 'sluice-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`));
  await client.connect(transport);
  return { client, transport };
}

async function toolNames(client) {
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

describe('MCP gateway', { timeout: 60000 }, () => {
  let sluice;
  before(async () => {
    sluice = await startSluice(
      agentManifest('calc', 'mcp_agent', { protocol: 'mcp' }) +
        agentManifest('cold', 'mcp_agent', { protocol: 'mcp', initialScale: 0 }),
      ['--autoscaler', 'allow-zero-initial-scale=true'],
    );
  });
  after(async () => sluice?.stop());

  test('lists the agents\' tools as <agent>.<tool> plus the built-ins, and calls them', { timeout: 20000 }, async () => {
    const { client } = await connect(sluice.url);
    assert.equal(client.getServerVersion().name, 'sluice');
    const names = await waitFor(async () => {
      const n = await toolNames(client);
      return n.includes('calc.add') && n;
    }, { timeoutMs: 15000, what: 'calc tools in tools/list' });
    for (const t of ['calc.echo', 'calc.add', 'calc.fail', 'calc.slow', 'publish_event', 'list_agents'])
      assert.ok(names.includes(t), `${t} in ${names}`);

    const add = await client.callTool({ name: 'calc.add', arguments: { a: 20, b: 22 } });
    assert.deepEqual(add.structuredContent, { sum: 42 });
    const fail = await client.callTool({ name: 'calc.fail', arguments: { message: 'nope' } });
    assert.equal(fail.isError, true);
    assert.equal(fail.content[0].text, 'nope');
    await assert.rejects(client.callTool({ name: 'calc.missing', arguments: {} }),
      (e) => e instanceof McpError && e.code === -32602);
    const agents = await client.callTool({ name: 'list_agents', arguments: {} });
    assert.ok(agents.structuredContent.agents.some((a) => a.name === 'calc' && a.protocol === 'mcp'));
    await client.close();
  });

  test('calls a tool on an agent at zero replicas (cold start), then lists its tools', { timeout: 20000 }, async () => {
    const { client } = await connect(sluice.url);
    let changed = false;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => { changed = true; });
    const agents = await client.callTool({ name: 'list_agents', arguments: {} });
    const cold = agents.structuredContent.agents.find((a) => a.name === 'cold');
    assert.ok(cold, JSON.stringify(agents.structuredContent));
    assert.equal((cold.revisions ?? []).reduce((n, r) => n + (r.readyReplicas ?? 0), 0), 0, 'cold starts at zero');
    assert.ok(!(await toolNames(client)).includes('cold.echo'), 'listing does not wake the agent');

    const echo = await client.callTool({ name: 'cold.echo', arguments: { text: 'woken' } });
    assert.equal(echo.content[0].text, 'woken');
    await waitFor(async () => (await toolNames(client)).includes('cold.echo'),
      { timeoutMs: 10000, what: 'cold tools after the cold start' });
    await waitFor(() => changed, { timeoutMs: 5000, what: 'notifications/tools/list_changed' });
    await client.close();
  });

  test('streams progress from a slow tool', { timeout: 20000 }, async () => {
    const { client } = await connect(sluice.url);
    const progress = [];
    const result = await client.callTool({ name: 'calc.slow', arguments: { steps: 4, delay_ms: 50 } }, undefined,
      { onprogress: (p) => progress.push(p) });
    assert.deepEqual(result.structuredContent, { steps: 4 });
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4]);
    assert.equal(progress[3].total, 4);
    await client.close();
  });

  test('cancelling a slow call ends the upstream request', { timeout: 20000 }, async () => {
    const { client } = await connect(sluice.url);
    const before = (await client.callTool({ name: 'calc.cancellations', arguments: {} })).structuredContent.count;
    const controller = new AbortController();
    let progressed = 0;
    const call = client.callTool({ name: 'calc.slow', arguments: { steps: 200, delay_ms: 50 } }, undefined, {
      signal: controller.signal,
      onprogress: () => { progressed += 1; },
    });
    await waitFor(() => progressed > 0, { timeoutMs: 10000, what: 'first progress' });
    controller.abort('the user gave up');
    await assert.rejects(call);
    const after = await waitFor(async () => {
      const s = (await client.callTool({ name: 'calc.cancellations', arguments: {} })).structuredContent;
      return s.count > before && s;
    }, { timeoutMs: 5000, what: 'the agent to see the cancellation' });
    assert.ok(after.count > before);
    await client.close();
  });

  test('publish_event publishes a CloudEvent to a broker', { timeout: 20000 }, async () => {
    const { client } = await connect(sluice.url);
    const bad = await client.callTool({ name: 'publish_event',
      arguments: { broker: 'no-such-broker', type: 'com.example.t', source: '/e2e' } });
    assert.equal(bad.isError, true);
    await assert.rejects(client.callTool({ name: 'publish_event', arguments: { broker: 'x' } }),
      (e) => e instanceof McpError && e.code === -32602);
    await client.close();
  });

  test('rejects foreign origins and requests without a session', { timeout: 20000 }, async () => {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const foreign = await fetch(`${sluice.url}/mcp`, { method: 'POST', headers: { ...headers, Origin: 'http://evil.example' }, body: ping });
    assert.equal(foreign.status, 403);
    const noSession = await fetch(`${sluice.url}/mcp`, { method: 'POST', headers, body: ping });
    assert.equal(noSession.status, 400);
    const unknown = await fetch(`${sluice.url}/mcp`, { method: 'POST', headers: { ...headers, 'Mcp-Session-Id': 'gone' }, body: ping });
    assert.equal(unknown.status, 404);
  });
});
