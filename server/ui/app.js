// Sluice dashboard: polls GET /apis/v1/overview (the JSON that `sluice status` prints) and renders it.
// Everything user-provided goes through textContent, never innerHTML.
'use strict';

const POLL_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// The Ready condition's status: True, False (a failure) or Unknown (still starting).
function readyStatus(item) {
  return item.readyStatus ?? (item.ready ? 'True' : 'False');
}

function readyCell(item) {
  const status = readyStatus(item);
  const td = el('td', {}, el('span', { class: `ready-${status.toLowerCase()}` }, status));
  if (!item.ready && item.reason) td.append(el('div', { class: 'reason' }, item.reason));
  return td;
}

function num(v, digits = 0) {
  return el('td', { class: 'num' }, Number(v ?? 0).toFixed(digits));
}

function seconds(s) {
  if (!s) return '–';
  return s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms` : `${s.toFixed(2)} s`;
}

function fillTable(id, rows, emptyText, columns) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...(rows.length ? rows : [el('tr', { class: 'empty' }, el('td', { colspan: columns }, emptyText))]));
}

function renderBrokers(brokers) {
  fillTable('brokers', brokers.map((b) => el('tr', { 'data-name': b.name },
    el('td', {}, b.name),
    readyCell(b),
    el('td', {}, b.storage),
    num(b.events),
    num(b.ingressPerSecond, 1),
    el('td', {}, ...b.triggers.map((t) => el('div', { class: 'trigger-backlog', 'data-trigger': t.name },
      `${t.name}: ${t.backlog}`))))), 'No brokers.', 6);
}

function renderTriggers(triggers) {
  fillTable('triggers', triggers.map((t) => el('tr', { 'data-name': t.name },
    el('td', {}, t.name),
    el('td', {}, t.broker),
    el('td', {}, el('code', {}, t.subscriber)),
    readyCell(t),
    num(t.delivered), num(t.failedAttempts), num(t.deadLettered), num(t.dropped), num(t.backlog), num(t.inFlight),
    el('td', { class: 'num' }, `${seconds(t.latency?.p50Seconds)} / ${seconds(t.latency?.p99Seconds)}`))),
  'No triggers.', 11);
}

// Observed concurrency, desired and ready replicas over the last minutes; panic mode shaded.
function chart(history) {
  const W = 600; const H = 160; const PAD = 24;
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  if (history.length < 2) {
    const t = svg('text', { x: PAD, y: H / 2 });
    t.textContent = 'collecting samples…';
    root.append(t);
    return root;
  }
  const t0 = history[0].t; const t1 = history[history.length - 1].t;
  const top = Math.max(1, ...history.map((p) => Math.max(p.concurrency, p.desired, p.ready)));
  const x = (t) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * PAD);
  const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
  for (let i = 0; i + 1 < history.length; ++i) {
    if (!history[i].panic) continue;
    root.append(svg('rect', { class: 'panic', x: x(history[i].t), y: PAD, width: Math.max(1, x(history[i + 1].t) - x(history[i].t)), height: H - 2 * PAD }));
  }
  for (const series of ['ready', 'desired', 'concurrency']) {
    const points = history.map((p) => `${x(p.t).toFixed(1)},${y(p[series]).toFixed(1)}`).join(' ');
    root.append(svg('polyline', { class: series, points }));
  }
  const label = (text, yy) => { const t = svg('text', { x: 2, y: yy }); t.textContent = text; root.append(t); };
  label(top.toFixed(top < 10 ? 1 : 0), PAD);
  label('0', H - PAD);
  const span = svg('text', { x: W - PAD - 60, y: H - 6 });
  span.textContent = `last ${Math.round((t1 - t0) / 1000)} s`;
  root.append(span);
  return root;
}

function placement(p) {
  let where = p.address ?? '';
  if (p.gpus) where += ` GPU ${p.gpus.join(',')}${p.gpuClass ? ` (${p.gpuClass})` : ''}`;
  if (p.gpuMemory) where += ` ${(p.gpuMemory / 2 ** 30).toFixed(1)} GiB`;
  return el('div', { class: 'replica', 'data-state': p.state }, `#${p.replica} ${p.reserve ? 'reserve' : p.state} ${where}`);
}

function renderAgents(agents) {
  const root = document.getElementById('agents');
  if (!agents.length) {
    root.replaceChildren(el('p', { class: 'reason' }, 'No agents.'));
    return;
  }
  root.replaceChildren(...agents.map((a) => {
    const last = a.history[a.history.length - 1] ?? {};
    const revisions = el('table', { class: 'revisions' },
      el('thead', {}, el('tr', {}, ...['Revision', 'Traffic', 'Ready', 'Replicas (ready/starting/draining/reserve)', 'Desired', 'In flight', 'Placement']
        .map((h) => el('th', {}, h)))),
      el('tbody', {}, ...a.revisions.map((r) => el('tr', { 'data-name': r.name },
        el('td', {}, r.name),
        el('td', { class: 'num traffic' }, `${r.traffic}%`),
        readyCell(r),
        el('td', { class: 'num replicas' }, `${r.replicas.ready} / ${r.replicas.starting} / ${r.replicas.draining} / ${r.replicas.reserve}`),
        num(r.desiredReplicas),
        num(r.requests?.inFlight),
        el('td', {}, ...r.placement.map(placement))))));
    const legend = el('div', { class: 'legend' },
      el('span', { class: 'concurrency' }, `observed concurrency ${Number(last.concurrency ?? 0).toFixed(2)}`),
      el('span', { class: 'desired' }, `desired ${last.desired ?? 0}`),
      el('span', { class: 'ready' }, `ready ${last.ready ?? 0}`),
      el('span', { class: `panic ${last.panic ? 'panic-on' : ''}` }, last.panic ? 'PANIC' : 'panic mode'));
    return el('div', { class: 'agent', 'data-name': a.name },
      el('div', { class: 'agent-head' }, el('h3', {}, a.name), el('span', { class: 'reason' }, `${a.protocol} · ${a.url}`),
        el('span', { class: `ready-${readyStatus(a).toLowerCase()}` },
          a.ready ? 'Ready' : `${readyStatus(a) === 'Unknown' ? 'Starting' : 'Not ready'}: ${a.reason}`)),
      el('div', { class: 'agent-body' }, revisions, el('div', {}, chart(a.history), legend)));
  }));
}

function renderDeadLetters(letters) {
  fillTable('dead-letters', letters.map((d) => el('tr', { 'data-id': d.id },
    el('td', {}, d.time),
    el('td', {}, `${d.broker} / ${d.trigger}`),
    el('td', {}, d.outcome === 'deadLettered' ? `dead-lettered to ${d.sink}` : 'dropped (no deadLetterSink)'),
    el('td', {}, el('code', {}, `${d.type} ${d.id}`)),
    el('td', {}, el('code', {}, d.knativeerrordest ?? '')),
    el('td', { class: 'num errorcode' }, d.knativeerrorcode ?? d.error),
    el('td', {}, el('code', {}, d.knativeerrordata ?? '')))), 'No dead letters.', 7);
}

function setConnection(text, cls) {
  const badge = document.getElementById('connection');
  badge.textContent = text;
  badge.className = `badge ${cls}`;
}

async function poll() {
  const headers = {};
  const token = sessionStorage.getItem('sluice-token');
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const res = await fetch('/apis/v1/overview', { headers, cache: 'no-store' });
    if (res.status === 401 || res.status === 403) {
      document.getElementById('login').hidden = false;
      setConnection(res.status === 401 ? 'token needed' : 'forbidden', 'down');
    } else if (!res.ok) {
      setConnection(`HTTP ${res.status}`, 'down');
    } else {
      const o = await res.json();
      document.getElementById('login').hidden = true;
      renderBrokers(o.brokers);
      renderTriggers(o.triggers);
      renderAgents(o.agents);
      renderDeadLetters(o.deadLetters);
      document.getElementById('server-time').textContent = o.time;
      setConnection('live', 'live');
    }
  } catch (error) {
    setConnection('server unreachable', 'down');
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem('sluice-token', document.getElementById('token').value);
});

poll();
