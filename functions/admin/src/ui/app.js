// Template Builder: plain ES module, no build step. Talks to the public HTTP API with the
// token kept in sessionStorage.
import { renderMap } from './map.js';

const $ = (s, root = document) => root.querySelector(s);
const LIMITS = { text: 4096, interactive_button: 1024, title: 20, buttons: 3 };
const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
const state = { token: sessionStorage.getItem('token'), tenant: sessionStorage.getItem('tenant'), admin: false, tenants: [], templates: [], flow: null, editing: null, logTimer: null };

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { status: 0, data: { message: `network error: ${e.message}` } };
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  return { status: response.status, data };
}

const chars = (s) => Array.from(s || '').length;
const tenantPath = (rest) => `/tenants/${state.tenant}${rest}`;
const variablesOf = (body) => [...new Set([...(body || '').matchAll(PLACEHOLDER)].map((m) => m[1]))];

function option(value, text, selected) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  if (selected) o.selected = true;
  return o;
}

// ---- sign in -------------------------------------------------------------------------

async function signIn(token, tenantId) {
  state.token = token;
  state.admin = false;
  const all = await api('GET', '/tenants');
  if (all.status === 200) {
    state.admin = true;
    state.tenants = all.data.tenants;
    if (!state.tenants.length) return 'Signed in as admin, but no tenant is registered yet (POST /tenants/register).';
    $('#who').textContent = 'admin';
  } else if (all.status === 403) {
    if (!tenantId) return 'This is a tenant API key: enter its tenant ID too.';
    const one = await api('GET', `/tenants/${tenantId}`);
    if (one.status !== 200) return (one.data && one.data.message) || 'This key cannot open that tenant.';
    state.tenants = [one.data.tenant];
    $('#who').textContent = `tenant ${one.data.tenant.name}`;
  } else {
    return (all.data && all.data.message) || 'Invalid token.';
  }
  sessionStorage.setItem('token', token);
  if (!state.tenants.some((t) => t.id === state.tenant)) state.tenant = state.tenants[0].id;
  sessionStorage.setItem('tenant', state.tenant);
  const select = $('#tenant');
  select.replaceChildren(...state.tenants.map((t) => option(t.id, `${t.name} (${t.phoneNumberId})`, t.id === state.tenant)));
  select.disabled = state.tenants.length < 2;
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#signout').hidden = false;
  await loadTenant();
  return null;
}

$('#signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const error = await signIn($('#token').value.trim(), $('#signin-tenant').value.trim());
  $('#signin-error').textContent = error || '';
});

$('#signout').addEventListener('click', () => {
  sessionStorage.clear();
  location.reload();
});

$('#tenant').addEventListener('change', async (ev) => {
  state.tenant = ev.target.value;
  sessionStorage.setItem('tenant', state.tenant);
  await loadTenant();
});

// ---- tabs ----------------------------------------------------------------------------

const tabs = ['templates', 'flows', 'map', 'send'];
function showTab(name) {
  for (const t of tabs) {
    $(`#tab-${t}`).hidden = t !== name;
    $(`#tab-btn-${t}`).setAttribute('aria-selected', String(t === name));
    $(`#tab-btn-${t}`).tabIndex = t === name ? 0 : -1;
  }
  if (name === 'map') drawMap();
  clearInterval(state.logTimer);
  if (name === 'send') {
    refreshLog();
    state.logTimer = setInterval(refreshLog, 2000);
  }
}
tabs.forEach((t, i) => {
  const b = $(`#tab-btn-${t}`);
  b.addEventListener('click', () => showTab(t));
  b.addEventListener('keydown', (ev) => {
    const step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    const next = tabs[(i + step + tabs.length) % tabs.length];
    showTab(next);
    $(`#tab-btn-${next}`).focus();
  });
});

async function loadTenant() {
  await Promise.all([loadTemplates(), loadFlow(), loadSettings()]);
  newTemplate();
  renderFlow();
  fillSendTemplates();
  drawMap();
}

// ---- templates -----------------------------------------------------------------------

async function loadTemplates() {
  const r = await api('GET', tenantPath('/templates?all=true'));
  state.templates = r.status === 200 ? r.data.templates : [];
  renderTemplateList();
}

const activeTemplates = () => state.templates.filter((t) => t.isActive);

function renderTemplateList() {
  const showAll = $('#show-inactive').checked;
  const rows = state.templates.filter((t) => showAll || t.isActive).map((t) => {
    const tr = document.createElement('tr');
    tr.tabIndex = 0;
    tr.dataset.key = t.key;
    if (!t.isActive) tr.className = 'inactive';
    for (const [text, cls] of [[t.key], [t.kind === 'text' ? 'text' : `buttons (${t.buttons.length})`], [t.body, 'body'], [String(t.version)], [t.isActive ? 'yes' : 'no']]) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    const open = () => editTemplate(t.key);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } });
    return tr;
  });
  $('#templates tbody').replaceChildren(...rows);
}
$('#show-inactive').addEventListener('change', renderTemplateList);

function clearErrors(form = $('#template-form')) {
  form.querySelectorAll('.field-error').forEach((n) => n.remove());
  form.querySelectorAll('[aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
  form.querySelectorAll('[data-error-for]').forEach((n) => { n.textContent = ''; });
}

// A 422's message right after the input it names (`data-field`); false if the form has none.
function fieldError(form, field, message) {
  const input = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (!input) return false;
  input.setAttribute('aria-invalid', 'true');
  const p = document.createElement('p');
  p.className = 'error field-error';
  p.setAttribute('role', 'alert');
  p.dataset.errorFor = field;
  p.textContent = message;
  input.insertAdjacentElement('afterend', p);
  input.focus();
  return true;
}

function showFieldError(field, message) {
  if (fieldError($('#template-form'), field, message)) return;
  const group = field.startsWith('buttons') ? 'buttons' : 'form';
  $(`#template-form [data-error-for="${group}"]`).textContent = message;
}

function buttonRow(b = {}) {
  const i = $('#buttons').children.length;
  const row = document.createElement('div');
  row.className = 'button-row';
  row.innerHTML = `
    <div><label for="b${i}-title">Title</label><input id="b${i}-title" class="b-title" data-field="buttons[${i}].title">
      <span class="counter b-count"></span></div>
    <div><label for="b${i}-id">Payload id</label><input id="b${i}-id" class="b-id" readonly data-field="buttons[${i}].id" placeholder="generated on save"></div>
    <div><label for="b${i}-next">Next template</label><select id="b${i}-next" class="b-next" data-field="buttons[${i}].nextTemplateKey"></select></div>
    <div><label for="b${i}-state">Next state</label><input id="b${i}-state" class="b-state" data-field="buttons[${i}].nextState"></div>
    <div><button type="button" class="b-remove" aria-label="Remove button ${i + 1}">Remove</button></div>`;
  $('.b-title', row).value = b.title || '';
  $('.b-id', row).value = b.id || '';
  $('.b-state', row).value = b.nextState || '';
  const next = $('.b-next', row);
  next.append(option('', '(none)'), ...activeTemplates().map((t) => option(t.key, `${t.key} — ${t.body.slice(0, 30)}`, t.key === b.nextTemplateKey)));
  if (b.nextTemplateKey && !activeTemplates().some((t) => t.key === b.nextTemplateKey)) next.append(option(b.nextTemplateKey, `${b.nextTemplateKey} (missing)`, true));
  $('.b-title', row).addEventListener('input', updateForm);
  $('.b-remove', row).addEventListener('click', () => { row.remove(); renumberButtons(); updateForm(); });
  $('#buttons').append(row);
  updateForm();
}

function renumberButtons() {
  [...$('#buttons').children].forEach((row, i) => {
    for (const [cls, field] of [['.b-title', 'title'], ['.b-id', 'id'], ['.b-next', 'nextTemplateKey'], ['.b-state', 'nextState']]) {
      $(cls, row).dataset.field = `buttons[${i}].${field}`;
    }
  });
}

function formBody() {
  const kind = $('#t-kind').value;
  const body = { body: $('#t-body').value, kind };
  if (kind === 'interactive_button') {
    body.buttons = [...$('#buttons').children].map((row) => {
      const b = { title: $('.b-title', row).value };
      if ($('.b-id', row).value) b.id = $('.b-id', row).value;
      if ($('.b-next', row).value) b.nextTemplateKey = $('.b-next', row).value;
      if ($('.b-state', row).value) b.nextState = $('.b-state', row).value;
      return b;
    });
  }
  return body;
}

function updateForm() {
  const kind = $('#t-kind').value;
  const interactive = kind === 'interactive_button';
  $('#buttons-fieldset').hidden = !interactive;
  $('#add-button').disabled = $('#buttons').children.length >= LIMITS.buttons;
  const max = LIMITS[kind];
  const n = chars($('#t-body').value);
  const counter = $('#body-count');
  counter.textContent = `${n} / ${max}`;
  counter.classList.toggle('over', n > max);
  for (const row of $('#buttons').children) {
    const len = chars($('.b-title', row).value);
    const c = $('.b-count', row);
    c.textContent = `${len} / ${LIMITS.title}`;
    c.classList.toggle('over', len > LIMITS.title);
  }
  // Live preview with sample values.
  const names = variablesOf($('#t-body').value);
  const box = $('#sample-vars');
  const current = Object.fromEntries([...box.querySelectorAll('input')].map((i) => [i.dataset.name, i.value]));
  box.replaceChildren(...names.map((name) => {
    const wrap = document.createElement('div');
    wrap.innerHTML = `<label for="sample-${name}">Sample {{${name}}}</label><input id="sample-${name}">`;
    const input = $('input', wrap);
    input.dataset.name = name;
    input.value = current[name] ?? (name === 'customer_name' ? 'Ana' : name);
    input.addEventListener('input', renderPreview);
    return wrap;
  }));
  renderPreview();
}

function renderPreview() {
  const values = Object.fromEntries([...$('#sample-vars').querySelectorAll('input')].map((i) => [i.dataset.name, i.value]));
  const text = $('#t-body').value.replace(PLACEHOLDER, (_, n) => values[n] ?? '');
  const preview = $('#preview');
  preview.replaceChildren(document.createTextNode(text || '…'));
  if ($('#t-kind').value === 'interactive_button') {
    const chips = document.createElement('div');
    chips.className = 'chips';
    for (const row of $('#buttons').children) {
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.textContent = $('.b-title', row).value || '(title)';
      chips.append(chip);
    }
    preview.append(chips);
  }
}

function newTemplate() {
  state.editing = null;
  clearErrors();
  $('#form-title').textContent = 'New template';
  $('#t-key').value = '';
  $('#t-kind').value = 'text';
  $('#t-body').value = '';
  $('#buttons').replaceChildren();
  $('#deactivate').hidden = true;
  $('#saved').textContent = '';
  updateForm();
}

function editTemplate(key) {
  const t = state.templates.find((x) => x.key === key);
  if (!t) return;
  state.editing = key;
  clearErrors();
  $('#form-title').textContent = `Edit ${key}`;
  $('#t-key').value = key;
  $('#t-kind').value = t.kind;
  $('#t-body').value = t.body;
  $('#buttons').replaceChildren();
  t.buttons.forEach((b) => buttonRow(b));
  $('#deactivate').hidden = !t.isActive;
  $('#saved').textContent = `version ${t.version}${t.isActive ? '' : ' (inactive)'}`;
  updateForm();
  $('#t-body').focus();
}

$('#new-template').addEventListener('click', () => { newTemplate(); $('#t-body').focus(); });
$('#add-button').addEventListener('click', () => { buttonRow(); $('#buttons').lastElementChild.querySelector('.b-title').focus(); });
$('#t-kind').addEventListener('change', () => {
  if ($('#t-kind').value === 'interactive_button' && !$('#buttons').children.length) buttonRow();
  updateForm();
});
$('#t-body').addEventListener('input', updateForm);

$('#template-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors();
  const body = formBody();
  const r = state.editing
    ? await api('PUT', tenantPath(`/templates/${encodeURIComponent(state.editing)}`), body)
    : await api('POST', tenantPath('/templates'), body);
  if (r.status === 200 || r.status === 201) {
    const t = r.data.template;
    await loadTemplates();
    editTemplate(t.key);
    $('#saved').textContent = `Saved as ${t.key} (version ${t.version})`;
    fillSendTemplates();
    return;
  }
  if (r.status === 422 && r.data && r.data.field) showFieldError(r.data.field, r.data.message);
  else $('#template-form [data-error-for="form"]').textContent = (r.data && r.data.message) || `Error ${r.status}`;
});

$('#deactivate').addEventListener('click', async () => {
  clearErrors();
  const r = await api('DELETE', tenantPath(`/templates/${encodeURIComponent(state.editing)}`));
  if (r.status === 200) {
    await loadTemplates();
    editTemplate(r.data.template.key);
    $('#saved').textContent = `Deactivated ${r.data.template.key}`;
  } else {
    $('#template-form [data-error-for="form"]').textContent = (r.data && r.data.message) || `Error ${r.status}`;
  }
});

// ---- flows ---------------------------------------------------------------------------

async function loadFlow() {
  const r = await api('GET', tenantPath('/flows'));
  state.flow = r.status === 200 ? r.data : { flows: [], fallbackTemplateKey: null };
}

function templateOptions(selected, none) {
  const opts = activeTemplates().map((t) => option(t.key, `${t.key} — ${t.body.slice(0, 30)}`, t.key === selected));
  return none ? [option('', none, !selected), ...opts] : opts;
}

function ruleRow(rule = { id: '', match: { type: 'equals', values: [] }, action: { templateKey: '', setState: null } }) {
  const row = document.createElement('div');
  row.className = 'rule-row';
  const i = $('#rules').children.length;
  row.innerHTML = `
    <div><label for="r${i}-id">Rule id</label><input id="r${i}-id" class="r-id"></div>
    <div><label for="r${i}-type">Match</label><select id="r${i}-type" class="r-type">
      <option value="equals">equals</option><option value="contains">contains</option>
      <option value="starts_with">starts with</option><option value="regex">regex</option></select></div>
    <div><label for="r${i}-values">Values</label><input id="r${i}-values" class="r-values" placeholder="hi, hello"></div>
    <div><label for="r${i}-template">Template</label><select id="r${i}-template" class="r-template"></select></div>
    <div><label for="r${i}-state">Set state</label><input id="r${i}-state" class="r-state"></div>
    <div class="row"><button type="button" class="r-up" aria-label="Move rule up">↑</button><button type="button" class="r-down" aria-label="Move rule down">↓</button><button type="button" class="r-remove">Remove</button></div>`;
  $('.r-id', row).value = rule.id || '';
  $('.r-type', row).value = rule.match.type;
  $('.r-values', row).value = rule.match.values.join(', ');
  $('.r-template', row).append(...templateOptions(rule.action.templateKey, '(choose)'));
  $('.r-state', row).value = rule.action.setState || '';
  $('.r-up', row).addEventListener('click', () => { if (row.previousElementSibling) row.parentNode.insertBefore(row, row.previousElementSibling); $('.r-up', row).focus(); });
  $('.r-down', row).addEventListener('click', () => { if (row.nextElementSibling) row.parentNode.insertBefore(row.nextElementSibling, row); $('.r-down', row).focus(); });
  $('.r-remove', row).addEventListener('click', () => row.remove());
  $('#rules').append(row);
}

function renderFlow() {
  $('#rules').replaceChildren();
  (state.flow.flows || []).forEach((r) => ruleRow(r));
  $('#fallback').replaceChildren(...templateOptions(state.flow.fallbackTemplateKey, '(no fallback)'));
  $('#flow-error').textContent = '';
  $('#flow-saved').textContent = '';
}

$('#add-rule').addEventListener('click', () => { ruleRow(); $('#rules').lastElementChild.querySelector('.r-id').focus(); });

$('#save-flow').addEventListener('click', async () => {
  const flows = [...$('#rules').children].map((row) => {
    const r = {
      match: { type: $('.r-type', row).value, values: $('.r-values', row).value.split(',').map((v) => v.trim()).filter(Boolean) },
      action: { type: 'send_template', templateKey: $('.r-template', row).value },
    };
    if ($('.r-id', row).value.trim()) r.id = $('.r-id', row).value.trim();
    if ($('.r-state', row).value.trim()) r.action.setState = $('.r-state', row).value.trim();
    return r;
  });
  const body = { flows, fallbackTemplateKey: $('#fallback').value || null };
  const r = await api('POST', tenantPath('/flows'), body);
  if (r.status === 200 || r.status === 201) {
    state.flow = r.data;
    renderFlow();
    $('#flow-saved').textContent = `Saved (version ${r.data.version})`;
  } else {
    $('#flow-error').textContent = (r.data && r.data.message) || `Error ${r.status}`;
  }
});

// ---- tenant settings -----------------------------------------------------------------

const SETTINGS = [['#throughput', 'throughputPerSecond'], ['#customer-burst', 'customerBurst'], ['#customer-interval', 'customerIntervalSeconds'], ['#marketing-backoff', 'marketingBackoffMinutes']];

function timeNode(iso) {
  const t = document.createElement('time');
  const d = new Date(iso);
  t.dateTime = iso;
  t.textContent = Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  return t;
}

// The outcome line under a settings form: a confirmation, or an error that names no field.
function say(selector, text, isError = false) {
  const p = $(selector);
  p.textContent = text;
  p.classList.toggle('error', isError);
}

function renderTokenStatus(tenant) {
  const ts = tenant.tokenStatus || { status: 'valid' };
  const valid = ts.status === 'valid';
  const badge = document.createElement('span');
  badge.className = `badge ${valid ? 'ok' : 'bad'}`;
  badge.textContent = valid ? 'Token valid' : 'Token invalid — messages are held';
  const parts = [badge];
  if (!valid) {
    if (ts.lastError) {
      const why = document.createElement('span');
      why.className = 'why';
      why.textContent = `${ts.lastError.title} (${ts.lastError.code})${ts.lastError.details ? `: ${ts.lastError.details}` : ''}`;
      parts.push(' ', why);
    }
    if (ts.since) parts.push(' since ', timeNode(ts.since));
    parts.push(state.admin ? '. Replace the access token to send them.' : '. An admin must replace the access token to send them.');
  }
  const box = $('#token-status');
  box.dataset.status = ts.status;
  box.replaceChildren(...parts);
  const paused = $('#paused-until');
  paused.hidden = !tenant.marketingPausedUntil;
  paused.replaceChildren(...(tenant.marketingPausedUntil
    ? ['API sends are paused until ', timeNode(tenant.marketingPausedUntil), " after Meta's spam / marketing limits."]
    : []));
}

function renderSettings(tenant) {
  for (const [selector, key] of SETTINGS) $(selector).value = tenant.settings ? String(tenant.settings[key]) : '';
  renderTokenStatus(tenant);
  $('#settings-section').dataset.tenant = tenant.id;
}

async function loadSettings() {
  const id = state.tenant;
  const section = $('#settings-section');
  delete section.dataset.tenant;
  clearErrors($('#settings-form'));
  clearErrors($('#token-form'));
  $('#new-access-token').value = '';
  say('#settings-message', '');
  say('#token-message', '');
  // Settings and the token are the admin's; a tenant API key sees them read-only.
  $('#settings-fields').disabled = !state.admin;
  $('#token-fields').disabled = !state.admin;
  $('#settings-readonly').hidden = state.admin;
  const r = await api('GET', tenantPath(''));
  if (id !== state.tenant) return;
  if (r.status === 200) {
    renderSettings(r.data.tenant);
    return;
  }
  for (const [selector] of SETTINGS) $(selector).value = '';
  delete $('#token-status').dataset.status;
  $('#token-status').textContent = 'Token status unknown';
  $('#paused-until').hidden = true;
  say('#settings-message', (r.data && r.data.message) || `Error ${r.status}`, true);
}

$('#settings-form').addEventListener('input', () => say('#settings-message', ''));

$('#settings-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#settings-form');
  clearErrors(form);
  say('#settings-message', '');
  const body = {};
  for (const [selector, key] of SETTINGS) {
    const value = $(selector).value.trim();
    if (value === '') { fieldError(form, key, `${key}: must be a number`); return; }
    body[key] = Number(value);
  }
  const id = state.tenant;
  const r = await api('PATCH', tenantPath(''), body);
  if (id !== state.tenant) return;
  if (r.status === 200) {
    renderSettings(r.data.tenant);
    say('#settings-message', 'Settings saved; senders use them within a few seconds.');
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
  say('#settings-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});

$('#token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#token-form');
  const input = $('#new-access-token');
  clearErrors(form);
  say('#token-message', '');
  const id = state.tenant;
  // The token goes only into this request's body: never logged, stored or shown.
  const r = await api('PUT', tenantPath('/access-token'), { accessToken: input.value });
  if (r.status === 200) input.value = '';
  if (id !== state.tenant) return;
  if (r.status === 200) {
    renderTokenStatus(r.data.tenant);
    const n = r.data.released;
    say('#token-message', `Token replaced; ${n} held ${n === 1 ? 'message' : 'messages'} released`);
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
  say('#token-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});

// ---- map -----------------------------------------------------------------------------

function drawMap() {
  const g = renderMap($('#map'), state.templates, state.flow);
  const problems = [
    ...g.missing.map((k) => `Missing template ${k} is still pointed to.`),
    ...g.unreachable.map((k) => `${k} cannot be reached from any rule, fallback or button.`),
  ];
  $('#map-problems').replaceChildren(...problems.map((p) => { const li = document.createElement('li'); li.textContent = p; return li; }));
}

// ---- test send -----------------------------------------------------------------------

function fillSendTemplates() {
  const select = $('#send-template');
  const previous = select.value;
  select.replaceChildren(...templateOptions(previous));
  fillSendVars();
}

function fillSendVars() {
  const t = state.templates.find((x) => x.key === $('#send-template').value);
  $('#send-vars').replaceChildren(...(t ? t.variables : []).map((name) => {
    const wrap = document.createElement('div');
    wrap.innerHTML = `<label for="var-${name}">{{${name}}}</label><input id="var-${name}">`;
    $('input', wrap).dataset.name = name;
    return wrap;
  }));
}
$('#send-template').addEventListener('change', fillSendVars);

$('#send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#send-error').textContent = '';
  const variables = Object.fromEntries([...$('#send-vars').querySelectorAll('input')].map((i) => [i.dataset.name, i.value]));
  const r = await api('POST', tenantPath('/send/template'), { to: $('#send-to').value.trim(), templateKey: $('#send-template').value, variables });
  if (r.status === 202) {
    $('#send-result').textContent = `Queued ${r.data.messageId}`;
    refreshLog();
  } else {
    $('#send-error').textContent = (r.data && r.data.message) || `Error ${r.status}`;
  }
});

async function refreshLog() {
  if (!state.tenant) return;
  const r = await api('GET', tenantPath('/messages?limit=20'));
  if (r.status !== 200) return;
  $('#log tbody').replaceChildren(...r.data.messages.map((m) => {
    const tr = document.createElement('tr');
    for (const text of [new Date(m.createdAt).toLocaleTimeString(), m.direction, m.customerWaId, m.body || m.type, m.status, String(m.attempts), m.lastError ? `${m.lastError.code}: ${m.lastError.title}` : '']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tr.dataset.status = m.status;
    return tr;
  }));
}

// ---- start ---------------------------------------------------------------------------

if (state.token) {
  signIn(state.token, state.tenant).then((error) => { if (error) { sessionStorage.clear(); $('#signin-error').textContent = error; } });
}
