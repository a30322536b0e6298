// The conversation map: templates as nodes, buttons, list rows, captures and rules as
// labelled edges from the customer's entry point; missing targets and unreachable templates
// are flagged.

const ENTRY = '__entry';
const SVG = 'http://www.w3.org/2000/svg';

// `bot` (the tenant's conversation settings, optional): its start template is an entry too.
export function graph(templates, flow, bot) {
  const active = templates.filter((t) => t.isActive);
  const keys = new Set(active.map((t) => t.key));
  const edges = [];
  for (const t of active) {
    for (const b of t.buttons) {
      if (b.nextTemplateKey) edges.push({ from: t.key, to: b.nextTemplateKey, label: b.title, kind: 'button' });
    }
    // A list row branches like a button.
    for (const section of t.sections || []) {
      for (const r of section.rows || []) {
        if (r.nextTemplateKey) edges.push({ from: t.key, to: r.nextTemplateKey, label: r.title, kind: 'row' });
      }
    }
    // A captured answer goes on to the next template; a wrong one to the retry template.
    const c = t.capture;
    if (c && c.nextTemplateKey) edges.push({ from: t.key, to: c.nextTemplateKey, label: `${c.variable} (${c.type})`, kind: 'capture' });
    if (c && c.retryTemplateKey) edges.push({ from: t.key, to: c.retryTemplateKey, label: `retry ${c.variable}`, kind: 'retry' });
  }
  for (const r of (flow && flow.flows) || []) {
    // A hand-off without a message points to no template.
    if (!r.action.templateKey) continue;
    const states = r.states && r.states.length ? ` [${r.states.join(', ')}]` : '';
    edges.push({ from: ENTRY, to: r.action.templateKey, label: `${r.match.values.join(', ')}${states}`, kind: r.action.type === 'handoff' ? 'rule handoff' : 'rule' });
  }
  if (bot && bot.startTemplateKey) {
    edges.push({ from: ENTRY, to: bot.startTemplateKey, label: bot.resetKeywords && bot.resetKeywords.length ? bot.resetKeywords.join(', ') : 'start', kind: 'start' });
  }
  if (flow && flow.fallbackTemplateKey) {
    edges.push({ from: ENTRY, to: flow.fallbackTemplateKey, label: 'anything else', kind: 'fallback' });
  }
  for (const e of edges) e.dangling = !keys.has(e.to);
  const depth = new Map([[ENTRY, 0]]);
  const queue = [ENTRY];
  while (queue.length) {
    const at = queue.shift();
    for (const e of edges) {
      if (e.from === at && !e.dangling && !depth.has(e.to)) {
        depth.set(e.to, depth.get(at) + 1);
        queue.push(e.to);
      }
    }
  }
  const unreachable = active.map((t) => t.key).filter((k) => !depth.has(k));
  const missing = [...new Set(edges.filter((e) => e.dangling).map((e) => e.to))];
  return { keys: active.map((t) => t.key), edges, depth, unreachable, missing };
}

function el(name, attrs, text) {
  const n = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

export function renderMap(svg, templates, flow, bot) {
  const g = graph(templates, flow, bot);
  const W = 170, H = 40, GX = 90, GY = 30;
  const columns = new Map();
  const place = (key, col) => {
    if (!columns.has(col)) columns.set(col, []);
    columns.get(col).push(key);
  };
  place(ENTRY, 0);
  for (const k of g.keys) if (g.depth.has(k)) place(k, g.depth.get(k));
  const last = Math.max(...columns.keys()) + 1;
  for (const k of g.unreachable) place(k, last);
  for (const k of g.missing) place(k, last + 1);
  const pos = new Map();
  for (const [col, keys] of columns) {
    keys.forEach((k, i) => pos.set(k, { x: 20 + col * (W + GX), y: 20 + i * (H + GY) }));
  }
  const width = 40 + (Math.max(...columns.keys()) + 1) * (W + GX);
  const height = 40 + Math.max(...[...columns.values()].map((c) => c.length)) * (H + GY);
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const defs = el('defs', {});
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#6e7781' }));
  defs.append(marker);
  svg.append(defs);
  g.edges.forEach((e, i) => {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) return;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const self = e.from === e.to;
    // Same column or backwards (menus loop): leave and enter on the right side.
    const back = !self && b.x <= a.x;
    const d = self
      ? `M ${a.x + W - 20} ${a.y} C ${a.x + W + 30} ${a.y - 40}, ${a.x + W + 40} ${a.y + H / 2}, ${a.x + W} ${a.y + H / 2}`
      : back
        ? `M ${x1} ${y1} C ${x1 + GX * 0.6} ${y1}, ${b.x + W + GX * 0.6} ${y2}, ${b.x + W} ${y2}`
        : `M ${x1} ${y1} C ${x1 + GX / 2} ${y1}, ${x2 - GX / 2} ${y2}, ${x2} ${y2}`;
    const group = el('g', { class: `edge ${e.kind}${e.dangling ? ' dangling' : ''}`, 'data-from': e.from === ENTRY ? 'entry' : e.from, 'data-to': e.to, 'data-label': e.label });
    group.append(el('path', { d, 'marker-end': 'url(#arrow)' }));
    const lx = self ? a.x + W + 10 : back ? Math.max(a.x, b.x) + W + GX * 0.45 : (x1 + x2) / 2;
    // Edges between the same two templates (rules to one template) stack their labels.
    const twins = g.edges.filter((o) => o.from === e.from && o.to === e.to);
    const lift = twins.length > 1 ? twins.indexOf(e) * 13 : self || back ? 0 : (i % 2) * 10;
    const ly = self ? a.y - 18 - lift : (y1 + y2) / 2 - 4 - lift;
    group.append(el('text', { x: lx, y: ly, 'text-anchor': 'middle' }, e.label.length > 24 ? `${e.label.slice(0, 23)}…` : e.label));
    svg.append(group);
  });
  const byKey = new Map(templates.map((t) => [t.key, t]));
  for (const [key, p] of pos) {
    const entry = key === ENTRY;
    const cls = entry ? 'node entry' : g.missing.includes(key) ? 'node dangling' : `node template${g.unreachable.includes(key) ? ' unreachable' : ''}`;
    const node = el('g', { class: cls, 'data-key': entry ? 'entry' : key, transform: `translate(${p.x},${p.y})` });
    node.append(el('rect', { width: W, height: H, rx: 8 }));
    const t = byKey.get(key);
    const title = entry ? 'Customer writes' : g.missing.includes(key) ? `${key} (missing)` : key;
    node.append(el('text', { x: 10, y: 17 }, title));
    if (t) node.append(el('text', { x: 10, y: 32, class: 'sub' }, (t.body || '').length > 22 ? `${t.body.slice(0, 21)}…` : t.body));
    svg.append(node);
  }
  return g;
}
