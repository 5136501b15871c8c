// @a2a-js/sdk's client against `sluice serve`'s /a2a/{agent}, whose agent is the example A2A agent
// (build/a2a_agent) run by Sluice; and a trigger that delivers events to that agent, whose replies
// re-enter the broker.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { ClientFactory } from '@a2a-js/sdk/client';

import { agentManifest, agentRef, brokerManifest, freePort, startSluice, waitFor } from './support.mjs';

describe('A2A gateway', { timeout: 60000 }, () => {
  let sluice;
  let sink;
  const received = [];
  before(async () => {
    const sinkPort = await freePort();
    sink = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        received.push({ type: req.headers['ce-type'], source: req.headers['ce-source'], body });
        res.writeHead(202).end();
      });
    });
    await new Promise((r) => sink.listen(sinkPort, '127.0.0.1', r));
    sluice = await startSluice(agentManifest('echo', 'a2a_agent', { protocol: 'a2a' }) + brokerManifest([
      { name: 'ask-echo', type: 'com.example.ask', subscriber: agentRef('echo') },
      { name: 'answers', type: 'dev.sluice.a2a.message', subscriber: `{uri: http://127.0.0.1:${sinkPort}/}` },
    ]));
  });
  after(async () => {
    await sluice?.stop();
    sink?.close();
  });

  test('fetches the agent card and sends a message', { timeout: 20000 }, async () => {
    const card = await (await fetch(`${sluice.url}/a2a/echo/.well-known/agent-card.json`)).json();
    assert.equal(card.supportedInterfaces[0].url, `${sluice.url}/a2a/echo`);
    const client = await new ClientFactory().createFromUrl(`${sluice.url}/a2a/echo/`);
    const reply = await client.sendMessage({
      message: { messageId: 'm-1', role: 1, parts: [{ content: { $case: 'text', value: 'hello' } }] },
    });
    assert.equal(reply.parts[0].content.value, 'echo: hello');
  });

  test('streams a task\'s updates', { timeout: 20000 }, async () => {
    const client = await new ClientFactory().createFromUrl(`${sluice.url}/a2a/echo/`);
    const updates = [];
    for await (const update of client.sendMessageStream({
      message: { messageId: 'm-2', role: 1, parts: [{ content: { $case: 'text', value: 'a task' } }] },
    })) updates.push(update);
    assert.equal(updates.length, 4);
    const last = updates.at(-1);
    const status = last.status ?? last.payload?.value?.status ?? last.value?.status;
    assert.ok(status, JSON.stringify(last));
    assert.equal(status.state, 3 /* TASK_STATE_COMPLETED */);
  });

  test('a trigger delivers an event as a message and the reply re-enters the broker', { timeout: 20000 }, async () => {
    const res = await fetch(`${sluice.url}/brokers/default`, {
      method: 'POST',
      headers: { 'ce-id': 'ask-1', 'ce-source': '/e2e', 'ce-type': 'com.example.ask', 'ce-specversion': '1.0',
        'content-type': 'application/json' },
      body: JSON.stringify({ question: 'ping?' }),
    });
    assert.equal(res.status, 202);
    const answer = await waitFor(() => received.find((e) => e.type === 'dev.sluice.a2a.message'),
      { timeoutMs: 15000, what: 'the reply CloudEvent at the sink' });
    assert.equal(answer.source, '/a2a/echo');
    assert.deepEqual(JSON.parse(answer.body).parts[0].data, { question: 'ping?' });
  });
});
