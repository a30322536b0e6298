// Template Builder: plain ES module, no build step. Talks to the public HTTP API with the
// token kept in sessionStorage.
import { renderMap } from './map.js';

const $ = (s, root = document) => root.querySelector(s);
const LIMITS = {
  text: 4096, interactive_button: 1024, interactive_list: 1024, caption: 1024, title: 20, buttons: 3,
  listButton: 20, sectionTitle: 24, rowTitle: 24, rowDescription: 72, rows: 10, sections: 10, headerText: 60, footer: 60,
};
const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
// Meta templates' placeholders: {{1}} or {{name}}.
const META_PARAMETER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
const MEDIA_LABELS = { image: 'Image', document: 'Document', video: 'Video' };
const state = {
  token: sessionStorage.getItem('token'), tenant: sessionStorage.getItem('tenant'), admin: false, tenants: [], templates: [], flow: null, editing: null, logTimer: null,
  tab: 'templates', listOpen: false, customersCursor: null, metaTemplates: [], metaSelected: null,
  bot: null, trying: null, tryBusy: false, tryRound: 0,
};

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
    $('#who').textContent = 'admin';
    $('#connect').hidden = false;
    if (!state.tenants.length) {
      // A fresh deployment: the first tenant comes from Embedded Signup (or the API).
      sessionStorage.setItem('token', token);
      $('#signin').hidden = true;
      $('#signout').hidden = false;
      $('#connect-box').open = true;
      say('#connect-message', 'No tenant yet: connect a WhatsApp Business Account (or POST /tenants/register).');
      return null;
    }
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

// ---- Embedded Signup ------------------------------------------------------------------

$('#connect-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#connect-form');
  clearErrors(form);
  say('#connect-message', '');
  $('#connect-key').hidden = true;
  const body = { name: $('#connect-name').value, code: $('#connect-code').value.trim() };
  if ($('#connect-waba').value.trim()) body.wabaId = $('#connect-waba').value.trim();
  if ($('#connect-pin').value.trim()) body.pin = $('#connect-pin').value.trim();
  $('#connect-submit').disabled = true;
  const r = await api('POST', '/tenants/onboard', body);
  $('#connect-submit').disabled = false;
  if (r.status === 201 || r.status === 200) {
    const t = r.data.tenant;
    $('#connect-pin').value = '';
    $('#connect-code').value = '';
    $('#connect-key-value').textContent = r.data.apiKey;
    $('#connect-key').hidden = false;
    const n = t.numbers.length;
    say('#connect-message', `${r.data.replayed ? 'Already connected' : 'Connected'}: ${t.name} with ${n} ${n === 1 ? 'number' : 'numbers'}${r.data.registered.length ? ` (${r.data.registered.length} registered on the Cloud API)` : ''}`);
    state.tenant = t.id;
    sessionStorage.setItem('tenant', t.id);
    await signIn(state.token, t.id);
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
  say('#connect-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});

// Meta's JS SDK, loaded only when asked (the console works offline without it).
function loadMetaSdk(appId) {
  return new Promise((resolve, reject) => {
    if (window.FB) { resolve(window.FB); return; }
    window.fbAsyncInit = () => {
      window.FB.init({ appId, autoLogAppEvents: true, xfbml: false, version: 'v20.0' });
      resolve(window.FB);
    };
    const script = document.createElement('script');
    script.src = 'https://connect.facebook.net/en_US/sdk.js';
    script.async = true;
    script.crossOrigin = 'anonymous';
    script.onerror = () => reject(new Error("Meta's SDK could not be loaded (offline?): paste the code instead"));
    document.head.append(script);
  });
}

// The dialog reports the shared WABA through a message event.
window.addEventListener('message', (ev) => {
  if (!/^https:\/\/www\.facebook\.com$/.test(ev.origin)) return;
  try {
    const data = typeof ev.data === 'string' ? JSON.parse(ev.data) : ev.data;
    if (data && data.type === 'WA_EMBEDDED_SIGNUP' && data.data && data.data.waba_id) $('#connect-waba').value = data.data.waba_id;
  } catch { /* not the dialog's */ }
});

$('#connect-dialog').addEventListener('click', async () => {
  const appId = $('#connect-app-id').value.trim();
  const configId = $('#connect-config-id').value.trim();
  if (!appId || !configId) { say('#connect-message', "Enter the Meta app ID and the configuration ID first", true); return; }
  localStorage.setItem('metaAppId', appId);
  localStorage.setItem('metaConfigId', configId);
  try {
    const FB = await loadMetaSdk(appId);
    FB.login((response) => {
      if (response.authResponse && response.authResponse.code) {
        $('#connect-code').value = response.authResponse.code;
        say('#connect-message', 'Code received: press “Create tenant”.');
      } else {
        say('#connect-message', 'The dialog was closed without connecting an account.', true);
      }
    }, { config_id: configId, response_type: 'code', override_default_response_type: true, extras: { setup: {}, sessionInfoVersion: '3' } });
  } catch (e) {
    say('#connect-message', e.message, true);
  }
});
$('#connect-app-id').value = localStorage.getItem('metaAppId') || '';
$('#connect-config-id').value = localStorage.getItem('metaConfigId') || '';

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

const tabs = ['templates', 'flows', 'map', 'try', 'send', 'customers', 'meta', 'analytics', 'dead', 'access'];
function showTab(name) {
  state.tab = name;
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
  if (name === 'customers') loadCustomers();
  if (name === 'meta') loadMetaTemplates();
  if (name === 'try') renderTryConversation();
  if (name === 'analytics') loadAnalytics();
  if (name === 'dead') loadDeadLetters();
  if (name === 'access') loadAccess();
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
  const id = state.tenant;
  delete $('#app').dataset.tenant;
  resetTenantViews();
  await Promise.all([loadTemplates(), loadFlow(), loadSettings()]);
  if (id !== state.tenant) return;
  newTemplate();
  renderFlow();
  fillSendTemplates();
  fillStartTemplate(state.bot && state.bot.startTemplateKey);
  drawMap();
  if (state.tab === 'customers') loadCustomers();
  if (state.tab === 'meta') loadMetaTemplates();
  if (state.tab === 'analytics') loadAnalytics();
  if (state.tab === 'dead') loadDeadLetters();
  if (state.tab === 'access') loadAccess();
  // Everything of this tenant is on screen.
  $('#app').dataset.tenant = id;
}

// Another tenant: nothing of the previous one's customers or Meta templates stays on screen.
function resetTenantViews() {
  resetTry();
  state.customersCursor = null;
  $('#customers tbody').replaceChildren();
  $('#customers-empty').hidden = true;
  $('#customers-more').hidden = true;
  say('#customers-error', '');
  say('#customers-status', '');
  $('#send-window').replaceChildren();
  $('#send-error').textContent = '';
  $('#send-result').textContent = '';
  state.metaTemplates = [];
  state.metaSelected = null;
  $('#meta-templates tbody').replaceChildren();
  $('#meta-empty').hidden = true;
  $('#meta-waba-hint').hidden = true;
  $('#meta-send-form').hidden = true;
  say('#meta-status', '');
  say('#meta-error', '');
  $('#analytics-chart').replaceChildren();
  $('#analytics-summary').replaceChildren();
  for (const t of ['#analytics-funnel', '#analytics-taps', '#analytics-rules']) $(`${t} tbody`).replaceChildren();
  delete $('#tab-analytics').dataset.loaded;
  $('#dead-letters tbody').replaceChildren();
  $('#dead-empty').hidden = true;
  $('#dead-retry-all').hidden = true;
  say('#dead-error', '');
  say('#dead-status', '');
  $('#numbers tbody').replaceChildren();
  $('#subscriptions tbody').replaceChildren();
  $('#new-secret').hidden = true;
  $('#deliveries-box').hidden = true;
  say('#subs-error', '');
  say('#sub-message', '');
  say('#numbers-error', '');
  say('#number-message', '');
  $('#api-keys tbody').replaceChildren();
  $('#new-key').hidden = true;
  $('#new-key-value').textContent = '';
  $('#tenant-status').replaceChildren();
  $('#toggle-status').hidden = true;
  say('#keys-error', '');
  say('#status-error', '');
  say('#key-message', '');
}

// ---- templates -----------------------------------------------------------------------

async function loadTemplates() {
  const id = state.tenant;
  const r = await api('GET', tenantPath('/templates?all=true'));
  if (id !== state.tenant) return; // another tenant was chosen meanwhile
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
    for (const [text, cls] of [[t.key], [kindLabel(t)], [t.body, 'body'], [String(t.version)], [t.isActive ? 'yes' : 'no']]) {
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

const rowsOf = (t) => (t.sections || []).flatMap((s) => s.rows || []);

function kindLabel(t) {
  const capture = t.capture ? ` + capture ${t.capture.variable}` : '';
  if (t.kind === 'interactive_button') return `buttons (${t.buttons.length})${capture}`;
  if (t.kind === 'interactive_list') return `list (${rowsOf(t).length} rows)${capture}`;
  return `${t.media ? `text + ${t.media.type}` : 'text'}${capture}`;
}

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

// Fields the editor shows in one input: a media id goes in the link input, and "needs
// exactly one of link or id" belongs there too.
const FIELD_ALIASES = { 'media.id': 'media.link', media: 'media.link', 'header.id': 'header.link', header: 'header.link' };

function showFieldError(field, message) {
  const form = $('#template-form');
  if (fieldError(form, field, message)) return;
  if (FIELD_ALIASES[field] && fieldError(form, FIELD_ALIASES[field], message)) return;
  const group = ['buttons', 'sections', 'button', 'header', 'footer', 'media', 'capture'].find((g) => field === g || field.startsWith(`${g}[`) || field.startsWith(`${g}.`)) || 'form';
  const target = { button: 'sections', footer: 'header' }[group] || group;
  $(`#template-form [data-error-for="${target}"]`).textContent = message;
}

// A "next template" select: (none), the active templates, and a missing one still pointed to.
function fillNextOptions(select, key) {
  select.append(option('', '(none)'), ...activeTemplates().map((t) => option(t.key, `${t.key} — ${t.body.slice(0, 30)}`, t.key === key)));
  if (key && !activeTemplates().some((t) => t.key === key)) select.append(option(key, `${key} (missing)`, true));
}

// The same, replacing what the select held, with `none` for the empty choice.
function templateSelect(select, key, none) {
  select.replaceChildren();
  fillNextOptions(select, key);
  select.firstElementChild.textContent = none;
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
  fillNextOptions($('.b-next', row), b.nextTemplateKey);
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

// ---- list sections -------------------------------------------------------------------

// A section of a list menu: its title and its rows (each wired like a reply button).
function sectionBox(s = { title: '', rows: [{}] }) {
  const box = document.createElement('div');
  box.className = 'section-box';
  box.innerHTML = `
    <div class="row"><h3 class="s-heading"></h3><button type="button" class="s-remove">Remove section</button></div>
    <label class="s-title-label">Section title <small>(required with more than one section)</small></label>
    <input class="s-title" autocomplete="off">
    <span class="counter s-count"></span>
    <div class="s-rows"></div>
    <button type="button" class="s-add-row">Add row</button>`;
  $('.s-title', box).value = s.title || '';
  $('.s-title', box).addEventListener('input', updateForm);
  $('.s-remove', box).addEventListener('click', () => {
    box.remove();
    renumberSections();
    updateForm();
    $('#add-section').focus();
  });
  $('.s-add-row', box).addEventListener('click', () => {
    listRow(box);
    $('.s-rows', box).lastElementChild.querySelector('.l-title').focus();
  });
  $('#sections').append(box);
  (s.rows && s.rows.length ? s.rows : [{}]).forEach((r) => listRow(box, r));
  return box;
}

function listRow(box, r = {}) {
  const row = document.createElement('div');
  row.className = 'button-row list-row-edit';
  row.innerHTML = `
    <div><label class="l-title-label">Row title</label><input class="l-title" autocomplete="off">
      <span class="counter l-title-count"></span></div>
    <div><label class="l-desc-label">Description</label><input class="l-desc" autocomplete="off">
      <span class="counter l-desc-count"></span></div>
    <div><label class="l-id-label">Row id</label><input class="l-id" readonly placeholder="generated on save"></div>
    <div><label class="l-next-label">Next template</label><select class="l-next"></select></div>
    <div><label class="l-state-label">Next state</label><input class="l-state" autocomplete="off"></div>
    <div><button type="button" class="l-remove">Remove row</button></div>`;
  $('.l-title', row).value = r.title || '';
  $('.l-desc', row).value = r.description || '';
  $('.l-id', row).value = r.id || '';
  $('.l-state', row).value = r.nextState || '';
  fillNextOptions($('.l-next', row), r.nextTemplateKey);
  for (const cls of ['.l-title', '.l-desc']) $(cls, row).addEventListener('input', updateForm);
  $('.l-remove', row).addEventListener('click', () => {
    row.remove();
    renumberSections();
    updateForm();
    $('.s-add-row', box).focus();
  });
  $('.s-rows', box).append(row);
  renumberSections();
  updateForm();
}

// Ids, labels and the 422 field paths (`sections[1].rows[0].title`) follow the order on screen.
function renumberSections() {
  [...$('#sections').children].forEach((box, s) => {
    $('.s-heading', box).textContent = `Section ${s + 1}`;
    $('.s-title', box).id = `s${s}-title`;
    $('.s-title', box).dataset.field = `sections[${s}].title`;
    $('.s-title-label', box).htmlFor = `s${s}-title`;
    $('.s-remove', box).setAttribute('aria-label', `Remove section ${s + 1}`);
    $('.s-add-row', box).setAttribute('aria-label', `Add row to section ${s + 1}`);
    [...$('.s-rows', box).children].forEach((row, r) => {
      for (const [cls, name, field] of [['l-title', 'title', 'title'], ['l-desc', 'desc', 'description'], ['l-id', 'id', 'id'], ['l-next', 'next', 'nextTemplateKey'], ['l-state', 'state', 'nextState']]) {
        const input = $(`.${cls}`, row);
        input.id = `s${s}r${r}-${name}`;
        input.dataset.field = `sections[${s}].rows[${r}].${field}`;
        $(`.${cls}-label`, row).htmlFor = input.id;
      }
      $('.l-remove', row).setAttribute('aria-label', `Remove row ${r + 1} of section ${s + 1}`);
    });
  });
}

const listRowCount = () => $('#sections').querySelectorAll('.list-row-edit').length;

// ---- header, footer and media --------------------------------------------------------

// `{type, link}` or `{type, id}` (digits are a media id uploaded to Meta), with a document's name.
function fileOf(type, source, filename) {
  const file = { type };
  const value = source.trim();
  if (/^[0-9]+$/.test(value)) file.id = value;
  else if (value) file.link = value;
  if (type === 'document' && filename.trim()) file.filename = filename.trim();
  return file;
}

function headerBody() {
  const type = $('#t-header-type').value;
  if (!type) return null;
  if (type === 'text') return { type, text: $('#t-header-text').value };
  return fileOf(type, $('#t-header-link').value, $('#t-header-filename').value);
}

function mediaBody() {
  const type = $('#t-media-type').value;
  return type ? fileOf(type, $('#t-media-link').value, $('#t-media-filename').value) : null;
}

function setHeader(h) {
  $('#t-header-type').value = h && h.type ? h.type : '';
  $('#t-header-text').value = (h && h.text) || '';
  $('#t-header-link').value = (h && (h.link || h.id)) || '';
  $('#t-header-filename').value = (h && h.filename) || '';
}

function setMedia(m) {
  $('#t-media-type').value = m && m.type ? m.type : '';
  $('#t-media-link').value = (m && (m.link || m.id)) || '';
  $('#t-media-filename').value = (m && m.filename) || '';
}

// ---- capture the answer --------------------------------------------------------------

const CAPTURE_LIMITS = { text: ['Minimum length', 'Maximum length'], number: ['Minimum value', 'Maximum value'] };
const CAPTURE_HINTS = { text: 'an answer', number: 'a number', email: 'an email address', phone: 'a phone number', date: 'a date (YYYY-MM-DD)', regex: 'an answer in the expected format' };

// `capture` in the API's shape: pattern only for regex, min/max only for text and number.
function captureBody() {
  if (!$('#t-capture').checked) return null;
  const type = $('#t-cap-type').value;
  const c = { variable: $('#t-cap-variable').value.trim(), type };
  if (type === 'regex' && $('#t-cap-pattern').value.trim()) c.pattern = $('#t-cap-pattern').value;
  if (CAPTURE_LIMITS[type]) {
    for (const [selector, key] of [['#t-cap-min', 'min'], ['#t-cap-max', 'max']]) {
      const value = $(selector).value.trim();
      if (value !== '') c[key] = Number(value);
    }
  }
  const attempts = $('#t-cap-attempts').value.trim();
  if (attempts !== '') c.maxAttempts = Number(attempts);
  if ($('#t-cap-retry').value) c.retryTemplateKey = $('#t-cap-retry').value;
  c.nextTemplateKey = $('#t-cap-next').value;
  if ($('#t-cap-state').value.trim()) c.nextState = $('#t-cap-state').value.trim();
  return c;
}

function setCapture(c) {
  $('#t-capture').checked = Boolean(c);
  $('#t-cap-variable').value = (c && c.variable) || '';
  $('#t-cap-type').value = (c && c.type) || 'text';
  $('#t-cap-pattern').value = (c && c.pattern) || '';
  $('#t-cap-min').value = c && c.min != null ? String(c.min) : '';
  $('#t-cap-max').value = c && c.max != null ? String(c.max) : '';
  $('#t-cap-attempts').value = String((c && c.maxAttempts) || 3);
  templateSelect($('#t-cap-retry'), c && c.retryTemplateKey, '(built-in prompt)');
  templateSelect($('#t-cap-next'), c && c.nextTemplateKey, '(choose)');
  $('#t-cap-state').value = (c && c.nextState) || '';
}

function updateCapture() {
  const on = $('#t-capture').checked;
  const type = $('#t-cap-type').value;
  $('#t-capture-fields').hidden = !on;
  $('#t-cap-pattern-wrap').hidden = type !== 'regex';
  const limits = CAPTURE_LIMITS[type];
  $('#t-cap-min-wrap').hidden = !limits;
  $('#t-cap-max-wrap').hidden = !limits;
  if (limits) [$('#t-cap-min-label').textContent, $('#t-cap-max-label').textContent] = limits;
  const name = $('#t-cap-variable').value.trim();
  $('#t-cap-variable-hint').textContent = `Letters, digits or _. Later templates show the answer as {{vars.${name || '<variable>'}}}.`;
  $('#t-cap-retry-hint').textContent = `Without one: “That doesn't look like ${CAPTURE_HINTS[type] || 'an answer'}. Please try again.”`;
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
  if (kind === 'interactive_list') {
    body.button = $('#t-list-button').value;
    body.sections = [...$('#sections').children].map((box) => {
      const s = {};
      if ($('.s-title', box).value.trim()) s.title = $('.s-title', box).value;
      s.rows = [...$('.s-rows', box).children].map((row) => {
        const r = { title: $('.l-title', row).value };
        if ($('.l-id', row).value) r.id = $('.l-id', row).value;
        if ($('.l-desc', row).value.trim()) r.description = $('.l-desc', row).value;
        if ($('.l-next', row).value) r.nextTemplateKey = $('.l-next', row).value;
        if ($('.l-state', row).value) r.nextState = $('.l-state', row).value;
        return r;
      });
      return s;
    });
  }
  if (kind === 'text') {
    const media = mediaBody();
    if (media) body.media = media;
  } else {
    const header = headerBody();
    if (header) body.header = header;
    if ($('#t-footer').value.trim()) body.footer = $('#t-footer').value;
  }
  const capture = captureBody();
  if (capture) body.capture = capture;
  return body;
}

function showCount(c, value, max) {
  const n = chars(value);
  c.textContent = `${n} / ${max}`;
  c.classList.toggle('over', n > max);
}

function updateForm() {
  const kind = $('#t-kind').value;
  const interactive = kind === 'interactive_button';
  $('#buttons-fieldset').hidden = !interactive;
  $('#list-fieldset').hidden = kind !== 'interactive_list';
  $('#header-fieldset').hidden = kind === 'text';
  $('#media-fieldset').hidden = kind !== 'text';
  $('#add-button').disabled = $('#buttons').children.length >= LIMITS.buttons;
  const mediaType = $('#t-media-type').value;
  const headerType = $('#t-header-type').value;
  $('#t-media-source').hidden = !mediaType;
  $('#t-media-file').hidden = mediaType !== 'document';
  $('#t-header-text-wrap').hidden = headerType !== 'text';
  $('#t-header-source').hidden = !headerType || headerType === 'text';
  $('#t-header-file').hidden = headerType !== 'document';
  // With a file, a text template's body is its caption.
  const max = kind === 'text' && mediaType ? LIMITS.caption : LIMITS[kind];
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
  showCount($('#header-count'), $('#t-header-text').value, LIMITS.headerText);
  showCount($('#footer-count'), $('#t-footer').value, LIMITS.footer);
  showCount($('#list-button-count'), $('#t-list-button').value, LIMITS.listButton);
  for (const box of $('#sections').children) {
    showCount($('.s-count', box), $('.s-title', box).value, LIMITS.sectionTitle);
    for (const row of $('.s-rows', box).children) {
      showCount($('.l-title-count', row), $('.l-title', row).value, LIMITS.rowTitle);
      showCount($('.l-desc-count', row), $('.l-desc', row).value, LIMITS.rowDescription);
    }
  }
  // At most 10 rows in all (a new section brings its first row).
  const rows = listRowCount();
  const rowsCounter = $('#rows-count');
  rowsCounter.textContent = `${rows} / ${LIMITS.rows} rows`;
  rowsCounter.classList.toggle('over', rows > LIMITS.rows);
  $('#sections').querySelectorAll('.s-add-row').forEach((b) => { b.disabled = rows >= LIMITS.rows; });
  $('#add-section').disabled = rows >= LIMITS.rows || $('#sections').children.length >= LIMITS.sections;
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
  updateCapture();
  renderPreview();
}

function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

// Where a file goes in a preview: its kind, and its name or where WhatsApp fetches it.
function mediaPlaceholder(file) {
  const box = node('div', 'p-media');
  box.dataset.type = file.type;
  const icon = node('span', '', { image: '🖼', document: '📄', video: '🎬' }[file.type] || '📎');
  icon.setAttribute('aria-hidden', 'true');
  box.append(icon, node('span', 'p-media-kind', MEDIA_LABELS[file.type] || file.type));
  const from = file.filename || file.link || (file.id ? `media ${file.id}` : '');
  if (from) box.append(node('small', '', from));
  return box;
}

// The list as WhatsApp shows it: a button under the message that opens the rows.
function listPreview() {
  const label = $('#t-list-button').value.trim() || '(list button)';
  const open = node('button', 'chip list-open');
  open.type = 'button';
  open.setAttribute('aria-expanded', String(state.listOpen));
  open.setAttribute('aria-controls', 'preview-list');
  const icon = node('span', '', '☰ ');
  icon.setAttribute('aria-hidden', 'true');
  open.append(icon, label);
  open.addEventListener('click', () => {
    state.listOpen = !state.listOpen;
    renderPreview();
    $('#preview .list-open').focus();
  });
  const sheet = node('div', 'list-sheet');
  sheet.id = 'preview-list';
  sheet.hidden = !state.listOpen;
  sheet.append(node('div', 'list-sheet-title', label));
  for (const box of $('#sections').children) {
    const section = node('div', 'list-section');
    const title = $('.s-title', box).value.trim();
    if (title) section.append(node('div', 'list-section-title', title));
    for (const row of $('.s-rows', box).children) {
      const r = node('div', 'list-row');
      r.append(node('span', 'list-row-title', $('.l-title', row).value.trim() || '(title)'));
      if ($('.l-desc', row).value.trim()) r.append(node('small', '', $('.l-desc', row).value.trim()));
      section.append(r);
    }
    sheet.append(section);
  }
  const chips = node('div', 'chips');
  chips.append(open);
  return [chips, sheet];
}

function renderPreview() {
  const values = Object.fromEntries([...$('#sample-vars').querySelectorAll('input')].map((i) => [i.dataset.name, i.value]));
  const text = $('#t-body').value.replace(PLACEHOLDER, (_, n) => values[n] ?? '');
  const kind = $('#t-kind').value;
  const preview = $('#preview');
  const parts = [];
  if (kind === 'text') {
    const media = mediaBody();
    if (media) parts.push(mediaPlaceholder(media));
  } else {
    const header = headerBody();
    if (header && header.type === 'text') parts.push(node('div', 'p-header', header.text.trim() || '(header)'));
    else if (header) parts.push(mediaPlaceholder(header));
  }
  parts.push(node('div', 'p-body', text || '…'));
  if (kind !== 'text' && $('#t-footer').value.trim()) parts.push(node('div', 'p-footer', $('#t-footer').value.trim()));
  preview.replaceChildren(...parts);
  if (kind === 'interactive_list') preview.append(...listPreview());
  if (kind === 'interactive_button') {
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
  $('#t-list-button').value = '';
  $('#sections').replaceChildren();
  setHeader(null);
  $('#t-footer').value = '';
  setMedia(null);
  setCapture(null);
  state.listOpen = false;
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
  $('#t-list-button').value = t.button || '';
  $('#sections').replaceChildren();
  (t.sections || []).forEach((s) => sectionBox(s));
  setHeader(t.header);
  $('#t-footer').value = t.footer || '';
  setMedia(t.media);
  setCapture(t.capture);
  state.listOpen = false;
  $('#deactivate').hidden = !t.isActive;
  $('#saved').textContent = `version ${t.version}${t.isActive ? '' : ' (inactive)'}`;
  updateForm();
  $('#t-body').focus();
}

$('#new-template').addEventListener('click', () => { newTemplate(); $('#t-body').focus(); });
$('#add-button').addEventListener('click', () => { buttonRow(); $('#buttons').lastElementChild.querySelector('.b-title').focus(); });
$('#t-kind').addEventListener('change', () => {
  if ($('#t-kind').value === 'interactive_button' && !$('#buttons').children.length) buttonRow();
  if ($('#t-kind').value === 'interactive_list' && !$('#sections').children.length) sectionBox();
  updateForm();
});
$('#t-body').addEventListener('input', updateForm);
for (const id of ['#t-header-type', '#t-media-type']) $(id).addEventListener('change', updateForm);
for (const id of ['#t-header-text', '#t-header-link', '#t-header-filename', '#t-footer', '#t-list-button', '#t-media-link', '#t-media-filename']) $(id).addEventListener('input', updateForm);
$('#add-section').addEventListener('click', () => { $('.s-title', sectionBox()).focus(); });
$('#t-capture').addEventListener('change', () => {
  updateCapture();
  if ($('#t-capture').checked) $('#t-cap-variable').focus();
});
$('#t-cap-type').addEventListener('change', updateCapture);
$('#t-cap-variable').addEventListener('input', updateCapture);

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
    fillStartTemplate($('#start-template').value);
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
    fillSendTemplates();
    fillStartTemplate($('#start-template').value);
  } else {
    $('#template-form [data-error-for="form"]').textContent = (r.data && r.data.message) || `Error ${r.status}`;
  }
});

// ---- flows ---------------------------------------------------------------------------

async function loadFlow() {
  const id = state.tenant;
  const r = await api('GET', tenantPath('/flows'));
  if (id !== state.tenant) return;
  state.flow = r.status === 200 ? r.data : { flows: [], fallbackTemplateKey: null };
}

function templateOptions(selected, none) {
  const opts = activeTemplates().map((t) => option(t.key, `${t.key} — ${t.body.slice(0, 30)}`, t.key === selected));
  return none ? [option('', none, !selected), ...opts] : opts;
}

// The inputs of a rule row and the API fields they hold (for a 422's field path).
const RULE_FIELDS = [['.r-id', 'id'], ['.r-type', 'match.type'], ['.r-values', 'match.values'], ['.r-states', 'states'], ['.r-action', 'action.type'], ['.r-template', 'action.templateKey'], ['.r-state', 'action.setState']];

function ruleRow(rule = { id: '', match: { type: 'equals', values: [] }, action: { type: 'send_template', templateKey: '', setState: null } }) {
  const row = document.createElement('div');
  row.className = 'rule-row';
  const i = $('#rules').children.length;
  row.innerHTML = `
    <div><label for="r${i}-id">Rule id</label><input id="r${i}-id" class="r-id"></div>
    <div><label for="r${i}-type">Match</label><select id="r${i}-type" class="r-type">
      <option value="equals">equals</option><option value="contains">contains</option>
      <option value="starts_with">starts with</option><option value="regex">regex</option></select></div>
    <div><label for="r${i}-values">Values</label><input id="r${i}-values" class="r-values" placeholder="hi, hello"></div>
    <div><label for="r${i}-states">Only in states</label><input id="r${i}-states" class="r-states" placeholder="any state"></div>
    <div><label for="r${i}-action">Action</label><select id="r${i}-action" class="r-action">
      <option value="send_template">send template</option><option value="handoff">hand to a human</option></select></div>
    <div><label for="r${i}-template">Template</label><select id="r${i}-template" class="r-template"></select></div>
    <div><label for="r${i}-state">Set state</label><input id="r${i}-state" class="r-state"></div>
    <div class="row"><button type="button" class="r-up" aria-label="Move rule up">↑</button><button type="button" class="r-down" aria-label="Move rule down">↓</button><button type="button" class="r-remove">Remove</button></div>`;
  $('.r-id', row).value = rule.id || '';
  $('.r-type', row).value = rule.match.type;
  $('.r-values', row).value = rule.match.values.join(', ');
  $('.r-states', row).value = (rule.states || []).join(', ');
  $('.r-action', row).value = rule.action.type === 'handoff' ? 'handoff' : 'send_template';
  $('.r-template', row).append(...templateOptions(rule.action.templateKey, '(choose)'));
  // A hand-off may send nothing first.
  const action = () => { $('.r-template', row).options[0].textContent = $('.r-action', row).value === 'handoff' ? '(no message)' : '(choose)'; };
  action();
  $('.r-action', row).addEventListener('change', action);
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
  clearErrors($('#tab-flows'));
}

$('#add-rule').addEventListener('click', () => { ruleRow(); $('#rules').lastElementChild.querySelector('.r-id').focus(); });

const commaList = (value) => value.split(',').map((v) => v.trim()).filter(Boolean);

$('#save-flow').addEventListener('click', async () => {
  const tab = $('#tab-flows');
  clearErrors(tab);
  $('#flow-error').textContent = '';
  $('#flow-saved').textContent = '';
  const flows = [...$('#rules').children].map((row, i) => {
    for (const [cls, field] of RULE_FIELDS) $(cls, row).dataset.field = `flows[${i}].${field}`;
    const type = $('.r-action', row).value;
    const r = {
      match: { type: $('.r-type', row).value, values: commaList($('.r-values', row).value) },
      action: { type },
    };
    if ($('.r-template', row).value) r.action.templateKey = $('.r-template', row).value;
    if ($('.r-id', row).value.trim()) r.id = $('.r-id', row).value.trim();
    if ($('.r-state', row).value.trim()) r.action.setState = $('.r-state', row).value.trim();
    const states = commaList($('.r-states', row).value);
    if (states.length) r.states = states;
    return r;
  });
  $('#fallback').dataset.field = 'fallbackTemplateKey';
  const body = { flows, fallbackTemplateKey: $('#fallback').value || null };
  const r = await api('POST', tenantPath('/flows'), body);
  if (r.status === 200 || r.status === 201) {
    state.flow = r.data;
    renderFlow();
    $('#flow-saved').textContent = `Saved (version ${r.data.version})`;
    return;
  }
  // `flows[1].states[0]` goes to that rule's states input; a field no input holds, to the line below.
  const field = r.status === 422 && r.data && r.data.field;
  if (field && (fieldError(tab, field, r.data.message) || fieldError(tab, field.replace(/\[\d+\]$/, ''), r.data.message))) return;
  $('#flow-error').textContent = (r.data && r.data.message) || `Error ${r.status}`;
});

// ---- tenant settings -----------------------------------------------------------------

const SETTINGS = [['#throughput', 'throughputPerSecond'], ['#customer-burst', 'customerBurst'], ['#customer-interval', 'customerIntervalSeconds'], ['#marketing-backoff', 'marketingBackoffMinutes']];
// Conversation settings (`tenant.bot`): keyword lists typed comma-separated, and numbers.
const BOT_KEYWORDS = [['#reset-keywords', 'resetKeywords'], ['#opt-out-keywords', 'optOutKeywords'], ['#opt-in-keywords', 'optInKeywords']];
const BOT_NUMBERS = [['#handoff-minutes', 'handoffMinutes']];

// The start template select: (none), the active templates, and a missing one still named.
function fillStartTemplate(key) {
  templateSelect($('#start-template'), key || '', '(none)');
}

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

// Graph's error as a line: its title, code and Meta's details.
function errorText(e) {
  return e ? `${e.title} (${e.code})${e.details ? `: ${e.details}` : ''}` : '';
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
      why.textContent = errorText(ts.lastError);
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
  state.bot = tenant.bot || null;
  const bot = state.bot || {};
  for (const [selector, key] of BOT_KEYWORDS) $(selector).value = (bot[key] || []).join(', ');
  for (const [selector, key] of BOT_NUMBERS) $(selector).value = bot[key] != null ? String(bot[key]) : '';
  fillStartTemplate(bot.startTemplateKey);
  $('#waba-id').value = tenant.wabaId || '';
  renderNumbers(tenant);
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
  $('#waba-fields').disabled = !state.admin;
  $('#waba-id').value = '';
  clearErrors($('#waba-form'));
  say('#waba-message', '');
  const r = await api('GET', tenantPath(''));
  if (id !== state.tenant) return;
  if (r.status === 200) {
    renderSettings(r.data.tenant);
    return;
  }
  for (const [selector] of [...SETTINGS, ...BOT_KEYWORDS, ...BOT_NUMBERS]) $(selector).value = '';
  state.bot = null;
  fillStartTemplate('');
  delete $('#token-status').dataset.status;
  $('#token-status').textContent = 'Token status unknown';
  $('#paused-until').hidden = true;
  say('#settings-message', (r.data && r.data.message) || `Error ${r.status}`, true);
}

$('#settings-form').addEventListener('input', () => say('#settings-message', ''));
$('#settings-form').addEventListener('change', () => say('#settings-message', ''));

$('#settings-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#settings-form');
  clearErrors(form);
  say('#settings-message', '');
  const body = {};
  for (const [selector, key] of [...SETTINGS, ...BOT_NUMBERS]) {
    const value = $(selector).value.trim();
    if (value === '') { fieldError(form, key, `${key}: must be a number`); return; }
    body[key] = Number(value);
  }
  for (const [selector, key] of BOT_KEYWORDS) body[key] = commaList($(selector).value);
  // "" clears the start template.
  body.startTemplateKey = $('#start-template').value;
  const id = state.tenant;
  const r = await api('PATCH', tenantPath(''), body);
  if (id !== state.tenant) return;
  if (r.status === 200) {
    renderSettings(r.data.tenant);
    drawMap();
    say('#settings-message', 'Settings saved; senders and the bot use them within a few seconds.');
    return;
  }
  // A keyword's 422 (`resetKeywords[2]`) goes to its list's input.
  const field = r.status === 422 && r.data && r.data.field;
  if (field && (fieldError(form, field, r.data.message) || fieldError(form, field.replace(/\[\d+\]$/, ''), r.data.message))) return;
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
  const g = renderMap($('#map'), state.templates, state.flow, state.bot);
  const problems = [
    ...g.missing.map((k) => `Missing template ${k} is still pointed to.`),
    ...g.unreachable.map((k) => `${k} cannot be reached from any rule, fallback, button, list row, capture or the start template.`),
  ];
  $('#map-problems').replaceChildren(...problems.map((p) => { const li = document.createElement('li'); li.textContent = p; return li; }));
}

// ---- try it --------------------------------------------------------------------------

// A chat with the simulator: what the customer sends, what the bot would answer. The
// conversation it returns goes back with the next message; nothing else is called.
const NO_REPLY = { opted_out: 'opted out', handoff: 'a human has the conversation', no_match: 'nothing matched' };

function resetTry() {
  state.tryRound += 1; // an answer still on its way belongs to the old chat
  state.trying = null;
  state.tryBusy = false;
  $('#try-send').disabled = false;
  $('#try-chat').replaceChildren();
  clearErrors($('#try-form'));
  say('#try-error', '');
  renderTryConversation();
}

// Under the chat: where the simulated conversation stands.
function renderTryConversation() {
  const c = state.trying;
  const box = $('#try-conversation');
  if (!c) {
    box.textContent = 'New conversation: no state, no variables.';
    return;
  }
  const vars = Object.entries(c.vars || {}).map(([k, v]) => `${k} = ${v}`).join(', ');
  const parts = [`State: ${c.state || '(none)'}`, `Last template: ${c.lastTemplateKey || '(none)'}`, `Variables: ${vars || '(none)'}`];
  if (c.captureAttempts) parts.push(`Failed answers: ${c.captureAttempts}`);
  if (c.optedOut) parts.push('Opted out');
  if (c.handoff) parts.push('With a human');
  box.textContent = parts.join(' · ');
}

function chatScroll() {
  const chat = $('#try-chat');
  chat.scrollTop = chat.scrollHeight;
}

// A button's or list row's title, from the templates on screen (else its id).
function choiceTitle(key, id) {
  const t = state.templates.find((x) => x.key === key);
  const choice = t && [...(t.buttons || []), ...rowsOf(t)].find((b) => b.id === id);
  return choice ? choice.title : id;
}

// Why the bot answered so, in a line.
function causeText(reply) {
  const c = reply.cause || {};
  const why = {
    button: () => `tapped “${choiceTitle(c.from, c.buttonId)}” of ${c.from}`,
    rule: () => `rule ${c.ruleId}`,
    fallback: () => 'the fallback template',
    captured: () => `answer kept as {{vars.${c.variable}}}`,
    retry: () => `answer not accepted for {{vars.${c.variable}}} (attempt ${c.attempt})`,
    reset: () => 'a reset keyword: state and variables cleared',
    opt_out: () => 'an opt-out keyword',
    opt_in: () => 'an opt-in keyword',
    handoff: () => `rule ${c.ruleId}: handed to a human`,
  }[c.type];
  return `${reply.templateKey || 'built-in message'} · ${why ? why() : c.type || 'no cause'}`;
}

// Why the bot stays quiet, and what changed anyway.
function quietText(reason, changes) {
  if (reason === 'handoff' && changes && changes.handoffUntil) return `A rule handed the conversation to a human until ${new Date(changes.handoffUntil).toLocaleString()}; the bot stays quiet.`;
  if (reason === 'handoff') return 'A human has the conversation: the bot stays quiet.';
  if (reason === 'opted_out') {
    const optIn = state.bot && state.bot.optInKeywords && state.bot.optInKeywords.length ? state.bot.optInKeywords.join(', ') : 'START';
    return `The customer opted out; an opt-in keyword (${optIn}) subscribes them again.`;
  }
  if (changes && changes.reset) return 'A reset keyword cleared the state and variables, but no start template is set.';
  return 'No rule matched in this state and the flow has no fallback template.';
}

function customerBubble(text, tapped) {
  const msg = node('div', `msg me${tapped ? ' tapped' : ''}`);
  msg.append(node('div', 'bubble me', text));
  if (tapped) msg.append(node('small', 'cause', 'tapped'));
  $('#try-chat').append(msg);
  chatScroll();
  return msg;
}

// A tappable reply button or list row: sends its id; the customer's bubble shows its title.
function tapButton(cls, title, id, label = title) {
  const b = node('button', cls);
  b.type = 'button';
  b.dataset.payloadId = id;
  b.append(label);
  b.addEventListener('click', () => trySend({ payloadId: id }, title));
  return b;
}

// The bot's message as WhatsApp shows it: header (text or file), body, footer, then reply
// buttons or the button that opens the list.
function botBubble(reply) {
  const content = reply.content || {};
  const msg = node('div', 'msg bot');
  msg.dataset.templateKey = reply.templateKey || '';
  msg.dataset.cause = (reply.cause && reply.cause.type) || '';
  const bubble = node('div', 'bubble bot');
  const header = content.header;
  if (header && header.text) bubble.append(node('div', 'p-header', header.text));
  else if (header && header.media) bubble.append(mediaPlaceholder(header.media));
  if (content.media) bubble.append(mediaPlaceholder(content.media));
  bubble.append(node('div', 'p-body', content.text || ''));
  if (content.footer) bubble.append(node('div', 'p-footer', content.footer));
  if (content.buttons && content.buttons.length) {
    const chips = node('div', 'chips');
    for (const b of content.buttons) chips.append(tapButton('chip', b.title, b.id));
    bubble.append(chips);
  }
  if (content.list) {
    const sheetId = `try-list-${$('#try-chat').children.length}`;
    const open = node('button', 'chip list-open');
    open.type = 'button';
    open.setAttribute('aria-expanded', 'false');
    open.setAttribute('aria-controls', sheetId);
    const icon = node('span', '', '☰ ');
    icon.setAttribute('aria-hidden', 'true');
    open.append(icon, content.list.button);
    const sheet = node('div', 'list-sheet');
    sheet.id = sheetId;
    sheet.hidden = true;
    sheet.append(node('div', 'list-sheet-title', content.list.button));
    for (const section of content.list.sections || []) {
      const box = node('div', 'list-section');
      if (section.title) box.append(node('div', 'list-section-title', section.title));
      for (const row of section.rows || []) {
        const b = tapButton('list-row', row.title, row.id, node('span', 'list-row-title', row.title));
        b.setAttribute('aria-label', row.description ? `${row.title}: ${row.description}` : row.title);
        if (row.description) b.append(node('small', '', row.description));
        b.addEventListener('click', () => { sheet.hidden = true; open.setAttribute('aria-expanded', 'false'); });
        box.append(b);
      }
      sheet.append(box);
    }
    open.addEventListener('click', () => {
      sheet.hidden = !sheet.hidden;
      open.setAttribute('aria-expanded', String(!sheet.hidden));
    });
    const chips = node('div', 'chips');
    chips.append(open);
    bubble.append(chips, sheet);
  }
  msg.append(bubble, node('small', 'cause', causeText(reply)));
  $('#try-chat').append(msg);
  chatScroll();
}

function quietNote(reason, changes) {
  const note = node('div', 'msg note');
  note.dataset.reason = reason || '';
  note.append(node('div', 'no-reply', `No reply: ${NO_REPLY[reason] || reason || 'nothing to send'}`), node('small', 'cause', quietText(reason, changes)));
  $('#try-chat').append(note);
  chatScroll();
}

// `message` is `{text}` or `{payloadId}`; `shown` is what the customer's bubble says.
async function trySend(message, shown) {
  if (state.tryBusy) return;
  clearErrors($('#try-form'));
  say('#try-error', '');
  const body = { ...message };
  if (state.trying) body.conversation = state.trying;
  const bubble = shown && shown.trim() ? customerBubble(shown, Boolean(message.payloadId)) : null;
  const round = state.tryRound;
  state.tryBusy = true;
  $('#try-send').disabled = true;
  const r = await api('POST', tenantPath('/simulate'), body);
  if (round !== state.tryRound) return;
  state.tryBusy = false;
  $('#try-send').disabled = false;
  if (r.status !== 200) {
    if (bubble) bubble.remove();
    if (message.text !== undefined) $('#try-text').value = message.text;
    // Under the chat (the input row has no room): a 422 naming `text` marks the input too.
    if (r.status === 422 && r.data && r.data.field === 'text') $('#try-text').setAttribute('aria-invalid', 'true');
    say('#try-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  state.trying = r.data.conversation || null;
  if (r.data.reply) botBubble(r.data.reply);
  else quietNote(r.data.reason, r.data.changes);
  renderTryConversation();
}

$('#try-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (state.tryBusy) return;
  const text = $('#try-text').value;
  $('#try-text').value = '';
  await trySend({ text }, text);
  $('#try-text').focus();
});

$('#try-reset').addEventListener('click', () => {
  resetTry();
  $('#try-text').focus();
});

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

const waIdOf = (to) => to.trim().replace(/^\+/, '');
const E164 = /^[1-9][0-9]{6,14}$/;

// Whether free-form messages reach the customer now (Meta's 24-hour customer service window).
function windowBadge(c) {
  const open = Boolean(c && c.windowOpen && c.windowOpenUntil);
  const badge = node('span', `badge window ${open ? 'ok' : 'bad'}`);
  badge.dataset.window = open ? 'open' : 'closed';
  if (open) badge.append('window open until ', timeNode(c.windowOpenUntil));
  else badge.textContent = 'window closed';
  return badge;
}

// Under "To": the chosen customer's window, so a closed one is known before sending.
async function showSendWindow() {
  const waId = waIdOf($('#send-to').value);
  const box = $('#send-window');
  if (!E164.test(waId)) {
    box.replaceChildren();
    return;
  }
  const id = state.tenant;
  const r = await api('GET', tenantPath(`/customers/${encodeURIComponent(waId)}`));
  if (id !== state.tenant || waIdOf($('#send-to').value) !== waId) return;
  if (r.status === 200) {
    const c = r.data.customer;
    const parts = [windowBadge(c)];
    if (!c.windowOpen) {
      parts.push(' ');
      if (c.lastInboundAt) parts.push('They last wrote ', timeNode(c.lastInboundAt), '. ');
      parts.push('Only an approved Meta template reaches them now.');
    }
    for (const badge of conversationBadges(c)) parts.push(' ', badge);
    box.replaceChildren(...parts);
  } else if (r.status === 404) {
    box.replaceChildren(windowBadge(null), ' This number has never written: only an approved Meta template reaches it.');
  } else {
    box.replaceChildren();
  }
}
$('#send-to').addEventListener('change', showSendWindow);

// The send was refused because the customer opted out: say what it means and what undoes it.
function optedOutText(to) {
  const optIn = state.bot && state.bot.optInKeywords && state.bot.optInKeywords.length ? state.bot.optInKeywords.join(', ') : 'START';
  return `Not sent: ${to} opted out of messages (they sent an opt-out keyword such as STOP). Nothing was stored or queued; they get messages again only after they send an opt-in keyword (${optIn}).`;
}

// The send was refused because the customer's window is closed: say so, and offer the way
// that works (a Meta template).
function showWindowClosed(to) {
  const open = node('button', '', 'Open Meta templates');
  open.type = 'button';
  open.addEventListener('click', () => openMetaFor(to));
  $('#send-error').replaceChildren(
    `Not sent: ${to} is outside the 24-hour customer service window. Free-form messages (bot templates too) reach a customer only within 24 hours of their last message; send them an approved Meta template instead. `,
    open,
  );
  showSendWindow();
}

$('#send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#send-error').textContent = '';
  $('#send-result').textContent = '';
  const to = $('#send-to').value.trim();
  const variables = Object.fromEntries([...$('#send-vars').querySelectorAll('input')].map((i) => [i.dataset.name, i.value]));
  const body = { to, templateKey: $('#send-template').value, variables };
  if ($('#send-from').value) body.from = $('#send-from').value;
  const r = await api('POST', tenantPath('/send/template'), body);
  if (r.status === 202) {
    $('#send-result').textContent = `Queued ${r.data.messageId}`;
    refreshLog();
  } else if (r.status === 422 && r.data && r.data.code === 'outside_customer_service_window') {
    showWindowClosed(to);
  } else if (r.status === 422 && r.data && r.data.code === 'customer_opted_out') {
    $('#send-error').textContent = optedOutText(to);
    showSendWindow();
  } else {
    $('#send-error').textContent = (r.data && r.data.message) || `Error ${r.status}`;
  }
});

// An inbound file shows as its kind and caption (or name).
const logBody = (m) => (m.media ? `[${m.type}] ${m.body || m.media.caption || m.media.filename || ''}`.trim() : m.body || m.type);

async function refreshLog() {
  if (!state.tenant) return;
  const r = await api('GET', tenantPath('/messages?limit=20'));
  if (r.status !== 200) return;
  $('#log tbody').replaceChildren(...r.data.messages.map((m) => {
    const tr = document.createElement('tr');
    for (const text of [new Date(m.createdAt).toLocaleTimeString(), m.direction, m.customerWaId, logBody(m), m.status, String(m.attempts), m.lastError ? `${m.lastError.code}: ${m.lastError.title}` : '']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tr.dataset.status = m.status;
    return tr;
  }));
}

// ---- customers -----------------------------------------------------------------------

async function loadCustomers(more = false) {
  const id = state.tenant;
  if (!id) return;
  say('#customers-error', '');
  const cursor = more && state.customersCursor ? `&cursor=${encodeURIComponent(state.customersCursor)}` : '';
  const r = await api('GET', tenantPath(`/customers?limit=50${cursor}`));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#customers-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  const rows = r.data.customers.map(customerRow);
  if (more) $('#customers tbody').append(...rows);
  else $('#customers tbody').replaceChildren(...rows);
  state.customersCursor = r.data.nextCursor || null;
  $('#customers-more').hidden = !state.customersCursor;
  $('#customers-empty').hidden = $('#customers tbody').children.length > 0;
}

// A human has the conversation (the bot is quiet) and / or the customer opted out.
function conversationBadges(c) {
  const badges = [];
  if (c.handoffUntil) {
    const b = node('span', 'badge pending handoff');
    b.append('Human handling until ', timeNode(c.handoffUntil));
    badges.push(b);
  }
  if (c.optedOutAt) {
    const b = node('span', 'badge bad opted-out', 'Opted out');
    b.title = `Opted out ${new Date(c.optedOutAt).toLocaleString()}`;
    badges.push(b);
  }
  return badges;
}

// The conversation's variables (captured answers) as name / value pairs.
function varsList(vars) {
  const entries = Object.entries(vars || {});
  if (!entries.length) return '';
  const list = node('dl', 'vars');
  for (const [name, value] of entries) list.append(node('dt', '', name), node('dd', '', value));
  return list;
}

function customerRow(c) {
  const tr = document.createElement('tr');
  tr.dataset.waId = c.waId;
  tr.dataset.window = c.windowOpen ? 'open' : 'closed';
  tr.dataset.handoff = c.handoffUntil ? 'human' : 'bot';
  tr.dataset.optedOut = String(Boolean(c.optedOutAt));
  const conversation = node('div', 'conversation');
  const where = [c.state, c.lastTemplateKey].filter(Boolean).join(' · ');
  if (where) conversation.append(node('span', '', where));
  conversation.append(...conversationBadges(c));
  const cells = [c.waId, c.name || '', c.lastInboundAt ? timeNode(c.lastInboundAt) : 'never', windowBadge(c), conversation, varsList(c.vars)];
  for (const content of cells) {
    const td = document.createElement('td');
    td.append(content);
    tr.append(td);
  }
  const send = node('button', '', 'Test send');
  send.type = 'button';
  send.setAttribute('aria-label', `Test send to ${c.waId}`);
  send.addEventListener('click', () => {
    showTab('send');
    $('#send-to').value = `+${c.waId}`;
    $('#send-error').textContent = '';
    $('#send-result').textContent = '';
    showSendWindow();
    $('#send-to').focus();
  });
  const meta = node('button', '', 'Meta template');
  meta.type = 'button';
  meta.setAttribute('aria-label', `Meta template to ${c.waId}`);
  meta.addEventListener('click', () => openMetaFor(`+${c.waId}`));
  const actions = node('div', 'row');
  actions.append(send, meta, handoffControl(c, tr));
  const td = document.createElement('td');
  td.append(actions);
  tr.append(td);
  return tr;
}

// "Hand to a human" (for some minutes) while the bot answers; "Back to the bot" while a
// human has the conversation.
function handoffControl(c, tr) {
  const box = node('div', 'handoff-control');
  if (c.handoffUntil) {
    const back = node('button', 'back-to-bot', 'Back to the bot');
    back.type = 'button';
    back.setAttribute('aria-label', `Back to the bot (${c.waId})`);
    back.addEventListener('click', () => setHandoff(c, tr, 'DELETE'));
    box.append(back);
    return box;
  }
  const id = `handoff-minutes-${c.waId}`;
  const label = node('label', '', 'Minutes');
  label.htmlFor = id;
  const minutes = document.createElement('input');
  minutes.id = id;
  minutes.type = 'number';
  minutes.min = '1';
  minutes.max = '10080';
  minutes.step = '1';
  minutes.inputMode = 'numeric';
  minutes.className = 'handoff-minutes';
  minutes.dataset.field = 'minutes';
  minutes.value = String((state.bot && state.bot.handoffMinutes) || 1440);
  const hand = node('button', 'hand-to-human', 'Hand to a human');
  hand.type = 'button';
  hand.setAttribute('aria-label', `Hand to a human (${c.waId})`);
  hand.addEventListener('click', () => setHandoff(c, tr, 'POST'));
  box.append(label, minutes, hand);
  return box;
}

async function setHandoff(c, tr, method) {
  const id = state.tenant;
  clearErrors(tr);
  say('#customers-error', '');
  say('#customers-status', '');
  let body;
  if (method === 'POST') {
    const value = $('.handoff-minutes', tr).value.trim();
    body = value === '' ? {} : { minutes: Number(value) };
  }
  const r = await api(method, tenantPath(`/customers/${encodeURIComponent(c.waId)}/handoff`), body);
  if (id !== state.tenant) return;
  if (r.status === 200) {
    const row = customerRow(r.data.customer);
    tr.replaceWith(row);
    const who = c.name ? `${c.name} (+${c.waId})` : `+${c.waId}`;
    if (method === 'POST') {
      say('#customers-status', `${who} is with a human until ${new Date(r.data.customer.handoffUntil).toLocaleString()}: the bot does not answer them.`);
      $('.back-to-bot', row).focus();
    } else {
      say('#customers-status', `The bot answers ${who} again.`);
      $('.hand-to-human', row).focus();
    }
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(tr, r.data.field, r.data.message)) return;
  say('#customers-error', (r.data && r.data.message) || `Error ${r.status}`, true);
}

$('#customers-refresh').addEventListener('click', () => loadCustomers());
$('#customers-more').addEventListener('click', () => loadCustomers(true));

// ---- Meta templates ------------------------------------------------------------------

const STATUS_BADGES = { APPROVED: 'ok', PENDING: 'pending', IN_APPEAL: 'pending', REJECTED: 'bad', PAUSED: 'bad', DISABLED: 'bad' };
const sameMeta = (a, b) => Boolean(a && b) && a.name === b.name && a.language === b.language;
const component = (t, type) => (Array.isArray(t.components) ? t.components : []).find((c) => c && String(c.type || '').toUpperCase() === type);

function openMetaFor(to) {
  showTab('meta');
  $('#meta-to').value = to;
  $('#tab-btn-meta').focus();
}

async function loadMetaTemplates() {
  const id = state.tenant;
  if (!id) return;
  const r = await api('GET', tenantPath('/meta-templates'));
  if (id !== state.tenant) return;
  showMetaTemplates(r);
}

// A list answer (read or sync): the table, the empty state, or why there is none. A failed
// sync keeps the templates stored before.
function showMetaTemplates(r) {
  const noWaba = r.status === 422 && Boolean(r.data) && r.data.field === 'wabaId';
  const hint = $('#meta-waba-hint');
  hint.hidden = !noWaba;
  hint.textContent = !noWaba ? '' : state.admin
    ? 'This tenant has no WhatsApp Business Account ID (wabaId) yet. Meta templates belong to a WhatsApp Business Account: enter its ID below and save, then sync from Meta.'
    : 'This tenant has no WhatsApp Business Account ID (wabaId) yet: an admin must set it (PATCH /tenants/{tenantId} with wabaId) before its Meta templates can be read.';
  const failed = r.status !== 200 && !noWaba;
  say('#meta-error', failed ? (r.data && r.data.message) || `Error ${r.status}` : '', failed);
  if (r.status === 200) state.metaTemplates = r.data.templates;
  else if (noWaba) state.metaTemplates = [];
  $('#meta-empty').hidden = !(r.status === 200 && !state.metaTemplates.length);
  const selected = state.metaTemplates.find((t) => sameMeta(t, state.metaSelected));
  if (selected) {
    state.metaSelected = selected;
    renderMetaNote();
  } else {
    state.metaSelected = null;
    $('#meta-send-form').hidden = true;
  }
  renderMetaList();
}

function renderMetaList() {
  $('#meta-templates tbody').replaceChildren(...state.metaTemplates.map((t) => {
    const tr = document.createElement('tr');
    tr.tabIndex = 0;
    tr.dataset.name = t.name;
    tr.dataset.language = t.language;
    tr.dataset.status = t.status;
    if (sameMeta(t, state.metaSelected)) tr.className = 'selected';
    for (const text of [t.name, t.language, t.category || '']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const status = document.createElement('td');
    status.append(node('span', `badge ${STATUS_BADGES[t.status] || 'neutral'}`, t.status));
    if (t.reason) status.append(node('small', '', t.reason));
    if (t.qualityScore) status.append(node('small', '', `quality ${t.qualityScore}`));
    tr.append(status);
    const open = () => selectMeta(t);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } });
    return tr;
  }));
}

function renderMetaNote() {
  const t = state.metaSelected;
  const note = $('#meta-send-note');
  const approved = !t || t.status === 'APPROVED';
  note.hidden = approved;
  note.textContent = approved ? '' : `This template is ${t.status}${t.reason ? ` (${t.reason})` : ''}: Meta sends only APPROVED templates.`;
}

// The placeholder names of a component's text ({{1}} or {{name}}), or 1..n when the text does
// not show them.
function metaNames(text, n) {
  const found = [...new Set([...String(text || '').matchAll(META_PARAMETER)].map((m) => m[1]))];
  return found.length === n ? found : Array.from({ length: n }, (_, i) => String(i + 1));
}

function parameterField(id, label, data) {
  const wrap = document.createElement('div');
  const l = node('label', '', label);
  l.htmlFor = id;
  const input = document.createElement('input');
  input.id = id;
  input.autocomplete = 'off';
  Object.assign(input.dataset, data);
  input.addEventListener('input', renderMetaPreview);
  wrap.append(l, input);
  return wrap;
}

// One input per parameter the template takes (`parameters`: header, body, buttons).
function metaParameterFields(t) {
  const p = t.parameters || { header: 0, body: 0, buttons: [] };
  const fields = [];
  const format = String(p.headerFormat || 'TEXT').toUpperCase();
  if (p.header > 0) {
    if (MEDIA_LABELS[format.toLowerCase()]) {
      fields.push(parameterField('mp-header-0', `Header ${format.toLowerCase()}: https link or Meta media ID`, { group: 'header', field: 'parameters.header[0]' }));
    } else {
      metaNames((component(t, 'HEADER') || {}).text, p.header).forEach((name, i) => {
        fields.push(parameterField(`mp-header-${i}`, `Header {{${name}}}`, { group: 'header', field: `parameters.header[${i}]`, name }));
      });
    }
  }
  metaNames((component(t, 'BODY') || {}).text, p.body).forEach((name, i) => {
    fields.push(parameterField(`mp-body-${i}`, `Body {{${name}}}`, { group: 'body', field: `parameters.body[${i}]`, name }));
  });
  for (const b of p.buttons || []) {
    if (b.parameters > 0) {
      fields.push(parameterField(`mp-button-${b.index}`, `Button ${b.index + 1} “${b.text}” (${b.type}): value`, { group: 'button', index: String(b.index), required: 'true' }));
    } else if (b.type === 'QUICK_REPLY') {
      fields.push(parameterField(`mp-button-${b.index}`, `Quick reply “${b.text}”: payload (optional)`, { group: 'button', index: String(b.index) }));
    }
  }
  if (!fields.length) fields.push(node('p', 'hint', 'This template takes no parameters.'));
  return fields;
}

// The template as the customer will read it, filled with the values typed so far.
function renderMetaPreview() {
  const t = state.metaSelected;
  const box = $('#meta-preview');
  if (!t) {
    box.replaceChildren();
    return;
  }
  const fill = (text, group) => {
    const values = Object.fromEntries([...$('#meta-params').querySelectorAll(`input[data-group="${group}"]`)].map((i) => [i.dataset.name, i.value]));
    return String(text || '').replace(META_PARAMETER, (whole, name) => values[name] || whole);
  };
  const parts = [];
  const header = component(t, 'HEADER');
  if (header) {
    const format = String(header.format || 'TEXT').toLowerCase();
    const link = $('#mp-header-0') ? $('#mp-header-0').value.trim() : '';
    if (format === 'text') parts.push(node('div', 'p-header', fill(header.text, 'header')));
    else if (MEDIA_LABELS[format]) parts.push(mediaPlaceholder({ type: format, link }));
    else parts.push(node('div', 'p-header', `(${format})`));
  }
  const body = component(t, 'BODY');
  parts.push(node('div', 'p-body', body ? fill(body.text, 'body') : t.name));
  const footer = component(t, 'FOOTER');
  if (footer && footer.text) parts.push(node('div', 'p-footer', footer.text));
  const buttons = component(t, 'BUTTONS');
  if (buttons && Array.isArray(buttons.buttons) && buttons.buttons.length) {
    const chips = node('div', 'chips');
    for (const b of buttons.buttons) chips.append(node('span', 'chip', (b && (b.text || b.type)) || ''));
    parts.push(chips);
  }
  box.replaceChildren(...parts);
}

function selectMeta(t) {
  state.metaSelected = t;
  for (const tr of $('#meta-templates tbody').children) tr.classList.toggle('selected', tr.dataset.name === t.name && tr.dataset.language === t.language);
  const form = $('#meta-send-form');
  form.hidden = false;
  clearErrors(form);
  say('#meta-send-error', '');
  say('#meta-send-result', '');
  $('#meta-send-title').textContent = `${t.name} (${t.language})`;
  renderMetaNote();
  $('#meta-params').replaceChildren(...metaParameterFields(t));
  renderMetaPreview();
  $('#meta-to').focus();
}

$('#meta-sync').addEventListener('click', async () => {
  const button = $('#meta-sync');
  const id = state.tenant;
  button.disabled = true;
  say('#meta-status', 'Reading the templates from Meta…');
  say('#meta-error', '');
  const r = await api('POST', tenantPath('/meta-templates/sync'));
  button.disabled = false;
  if (id !== state.tenant) return;
  const n = r.status === 200 ? r.data.templates.length : 0;
  say('#meta-status', r.status === 200 ? `Synced ${n} ${n === 1 ? 'template' : 'templates'} from Meta.` : '');
  showMetaTemplates(r);
});

$('#waba-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#waba-form');
  clearErrors(form);
  say('#waba-message', '');
  const id = state.tenant;
  const r = await api('PATCH', tenantPath(''), { wabaId: $('#waba-id').value.trim() });
  if (id !== state.tenant) return;
  if (r.status === 200) {
    renderSettings(r.data.tenant);
    say('#waba-message', r.data.tenant.wabaId ? 'WABA ID saved.' : 'WABA ID cleared.');
    await loadMetaTemplates();
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
  say('#waba-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});

$('#meta-send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#meta-send-form');
  const t = state.metaSelected;
  if (!t) return;
  clearErrors(form);
  say('#meta-send-error', '');
  say('#meta-send-result', '');
  const inputs = (group) => [...$('#meta-params').querySelectorAll(`input[data-group="${group}"]`)];
  const parameters = {};
  const header = inputs('header').map((i) => i.value);
  if (header.length) parameters.header = header;
  const body = inputs('body').map((i) => i.value);
  if (body.length) parameters.body = body;
  // A 422 names a button by its place in the array sent: the inputs follow that order.
  const buttons = [];
  for (const input of inputs('button')) {
    delete input.dataset.field;
    if (input.dataset.required || input.value.trim()) {
      input.dataset.field = `parameters.buttons[${buttons.length}].payload`;
      buttons.push({ index: Number(input.dataset.index), payload: input.value });
    }
  }
  if (buttons.length) parameters.buttons = buttons;
  const request = { to: $('#meta-to').value.trim(), name: t.name, language: t.language };
  if (Object.keys(parameters).length) request.parameters = parameters;
  const id = state.tenant;
  const r = await api('POST', tenantPath('/send/meta-template'), request);
  if (id !== state.tenant) return;
  if (r.status === 202) {
    say('#meta-send-result', `Queued ${r.data.messageId} (${r.data.status || 'queued'})`);
    return;
  }
  const message = r.data && r.data.code === 'customer_opted_out' ? optedOutText(request.to)
    : r.data && r.data.message ? `${r.data.message}${r.data.code ? ` [${r.data.code}]` : ''}` : `Error ${r.status}`;
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, message)) return;
  say('#meta-send-error', message, true);
});

// ---- start ---------------------------------------------------------------------------

if (state.token) {
  signIn(state.token, state.tenant).then((error) => { if (error) { sessionStorage.clear(); $('#signin-error').textContent = error; } });
}

// ---- access: the tenant's status and API keys ------------------------------------------

// The tenant's numbers: the Access tab's table and Test send's "From".
function renderNumbers(tenant) {
  const numbers = tenant.numbers || [{ phoneNumberId: tenant.phoneNumberId, status: 'active' }];
  const label = (n) => (n.displayPhoneNumber ? `${n.displayPhoneNumber} (${n.phoneNumberId})` : n.phoneNumberId);
  $('#send-from').replaceChildren(...numbers.map((n, i) => option(i === 0 ? '' : n.phoneNumberId, i === 0 ? `${label(n)} — first` : label(n), i === 0)));
  $('#numbers tbody').replaceChildren(...numbers.map((n) => {
    const tr = document.createElement('tr');
    tr.dataset.id = n.phoneNumberId;
    const actions = node('td', null, null);
    if (state.admin && numbers.length > 1) {
      const remove = node('button', null, 'Remove');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove number ${n.phoneNumberId}`);
      remove.addEventListener('click', () => removeNumber(n.phoneNumberId));
      actions.append(remove);
    }
    tr.append(node('td', null, n.phoneNumberId), node('td', null, n.displayPhoneNumber || ''), node('td', null, n.status), actions);
    return tr;
  }));
}

async function removeNumber(number) {
  if (!confirm(`Remove ${number}? Its customers' messages are no longer routed to this tenant.`)) return;
  const id = state.tenant;
  say('#numbers-error', '');
  const r = await api('DELETE', tenantPath(`/numbers/${number}`));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#numbers-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  renderNumbers(r.data.tenant);
  say('#number-message', `Number ${number} removed`);
}

$('#number-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#number-form');
  clearErrors(form);
  say('#number-message', '');
  const id = state.tenant;
  const body = { phoneNumberId: $('#number-id').value.trim() };
  if ($('#number-display').value.trim()) body.displayPhoneNumber = $('#number-display').value.trim();
  const r = await api('POST', tenantPath('/numbers'), body);
  if (id !== state.tenant) return;
  if (r.status === 201) {
    $('#number-id').value = '';
    $('#number-display').value = '';
    renderNumbers(r.data.tenant);
    say('#number-message', `Number ${body.phoneNumberId} added`);
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
  say('#number-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});

function renderTenantStatus(tenant) {
  const active = tenant.status === 'active';
  const badge = node('span', `badge ${active ? 'ok' : 'bad'}`, active ? 'Active' : 'Disabled');
  $('#tenant-status').dataset.status = tenant.status;
  $('#tenant-status').replaceChildren('Tenant: ', badge);
  const toggle = $('#toggle-status');
  toggle.hidden = !state.admin;
  toggle.textContent = active ? 'Disable tenant' : 'Activate tenant';
  toggle.dataset.next = active ? 'disabled' : 'active';
}

function keyRow(k) {
  const tr = document.createElement('tr');
  tr.dataset.id = k.id;
  const actions = document.createElement('td');
  if (state.admin) {
    const del = node('button', null, 'Delete');
    del.type = 'button';
    del.setAttribute('aria-label', `Delete key ${k.label}`);
    del.addEventListener('click', () => deleteKey(k));
    actions.append(del);
  }
  const prefix = node('td', null, null);
  prefix.append(node('code', null, `${k.prefix}…`));
  tr.append(node('td', null, k.label), prefix, node('td', null, null), node('td', null, null), actions);
  tr.children[2].append(timeNode(k.createdAt));
  tr.children[3].append(k.lastUsedAt ? timeNode(k.lastUsedAt) : 'never');
  return tr;
}

async function loadAccess() {
  const id = state.tenant;
  if (!id) return;
  say('#keys-error', '');
  $('#key-fields').disabled = !state.admin;
  $('#number-fields').disabled = !state.admin;
  const [tenant, keys, subs] = await Promise.all([api('GET', tenantPath('')), api('GET', tenantPath('/api-keys')), api('GET', tenantPath('/event-subscriptions'))]);
  if (id !== state.tenant) return;
  if (tenant.status === 200) {
    renderTenantStatus(tenant.data.tenant);
    renderNumbers(tenant.data.tenant);
  }
  if (subs.status === 200) $('#subscriptions tbody').replaceChildren(...subs.data.subscriptions.map(subscriptionRow));
  else say('#subs-error', (subs.data && subs.data.message) || `Error ${subs.status}`, true);
  if (keys.status !== 200) {
    say('#keys-error', (keys.data && keys.data.message) || `Error ${keys.status}`, true);
    return;
  }
  $('#api-keys tbody').replaceChildren(...keys.data.apiKeys.map(keyRow));
}

async function deleteKey(k) {
  if (!confirm(`Delete the key “${k.label}”? Requests with it are refused from now on.`)) return;
  const id = state.tenant;
  const r = await api('DELETE', tenantPath(`/api-keys/${k.id}`));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#keys-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  say('#key-message', `Key “${k.label}” deleted`);
  await loadAccess();
}

$('#key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#key-form');
  clearErrors(form);
  say('#key-message', '');
  $('#new-key').hidden = true;
  const id = state.tenant;
  const r = await api('POST', tenantPath('/api-keys'), { label: $('#key-label').value });
  if (id !== state.tenant) return;
  if (r.status === 201) {
    $('#key-label').value = '';
    $('#new-key-value').textContent = r.data.apiKey;
    $('#new-key').hidden = false;
    say('#key-message', `Key “${r.data.key.label}” created`);
    await loadAccess();
    return;
  }
  if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
  say('#key-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});

$('#toggle-status').addEventListener('click', async () => {
  const next = $('#toggle-status').dataset.next;
  if (next === 'disabled' && !confirm('Disable this tenant? Its keys and sends are refused and its customers are not answered until it is active again.')) return;
  const id = state.tenant;
  say('#status-error', '');
  const r = await api('PATCH', tenantPath(''), { status: next });
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#status-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  renderTenantStatus(r.data.tenant);
  const n = r.data.released;
  say('#key-message', next === 'active' ? `Tenant active; ${n} held ${n === 1 ? 'message' : 'messages'} released` : 'Tenant disabled');
});

// ---- dead letters ----------------------------------------------------------------------

function deadRow(m) {
  const tr = document.createElement('tr');
  tr.dataset.id = m.id;
  const created = node('td', null, null);
  created.append(timeNode(m.createdAt));
  const retry = node('button', null, 'Retry');
  retry.type = 'button';
  retry.setAttribute('aria-label', `Retry the message to ${m.customerWaId}`);
  retry.addEventListener('click', () => redrive([m.id]));
  const actions = node('td', null, null);
  actions.append(retry);
  tr.append(created, node('td', null, m.customerWaId), node('td', null, m.body || m.type), node('td', null, m.status),
    node('td', null, String(m.attempts)), node('td', 'why', errorText(m.lastError)), actions);
  return tr;
}

async function loadDeadLetters() {
  const id = state.tenant;
  if (!id) return;
  say('#dead-error', '');
  const r = await api('GET', tenantPath('/dead-letters'));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#dead-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  const rows = r.data.deadLetters.map(deadRow);
  $('#dead-letters tbody').replaceChildren(...rows);
  $('#dead-empty').hidden = rows.length > 0;
  $('#dead-retry-all').hidden = rows.length === 0;
  $('#tab-dead').dataset.loaded = String(rows.length);
}

async function redrive(messageIds) {
  const id = state.tenant;
  say('#dead-error', '');
  const r = await api('POST', tenantPath('/dead-letters/redrive'), messageIds ? { messageIds } : {});
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#dead-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  const n = r.data.redriven;
  say('#dead-status', `${n} ${n === 1 ? 'message' : 'messages'} sent back to the queue`);
  await loadDeadLetters();
}

$('#dead-refresh').addEventListener('click', () => loadDeadLetters());
$('#dead-retry-all').addEventListener('click', () => redrive(null));

// ---- analytics (charts: uPlot, embedded) -------------------------------------------------

function analyticsRow(cells) {
  const tr = document.createElement('tr');
  tr.append(...cells.map((c) => node('td', null, String(c))));
  return tr;
}

function card(label, value) {
  const d = node('div', 'card', null);
  d.append(node('span', 'card-value', String(value)), node('span', 'card-label', label));
  return d;
}

function drawAnalyticsChart(series, granularity) {
  const box = $('#analytics-chart');
  box.replaceChildren();
  if (!window.uPlot || !series.length) return;
  const t = series.map((b) => Date.parse(granularity === 'hour' ? `${b.bucket}:00:00Z` : `${b.bucket}T00:00:00Z`) / 1000);
  const data = [t, series.map((b) => b.inbound), series.map((b) => b.outbound)];
  const width = Math.max(300, Math.min(box.clientWidth || 900, 1100));
  new window.uPlot({
    width, height: 240,
    series: [{}, { label: 'Inbound', stroke: '#0b7a5a', width: 2 }, { label: 'Outbound', stroke: '#b35c00', width: 2 }],
    axes: [{}, { label: 'messages' }],
    scales: { x: { time: true } },
  }, data, box);
}

async function loadAnalytics() {
  const id = state.tenant;
  if (!id) return;
  const form = $('#analytics-form');
  clearErrors(form);
  say('#analytics-error', '');
  const q = new URLSearchParams();
  if ($('#analytics-from').value) q.set('from', $('#analytics-from').value);
  if ($('#analytics-to').value) q.set('to', $('#analytics-to').value);
  q.set('granularity', $('#analytics-granularity').value);
  const r = await api('GET', tenantPath(`/analytics?${q}`));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    if (r.status === 422 && r.data && r.data.field && fieldError(form, r.data.field, r.data.message)) return;
    say('#analytics-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  const a = r.data.analytics;
  const median = a.replyTime.medianSeconds;
  $('#analytics-summary').replaceChildren(
    card('inbound', a.totals.inbound), card('outbound', a.totals.outbound),
    card('median time to reply', median == null ? '—' : `${median.toFixed(1)} s`),
  );
  drawAnalyticsChart(a.series, a.granularity);
  const f = a.funnel;
  $('#analytics-funnel tbody').replaceChildren(
    ...[['Accepted', f.outbound], ['Sent', f.sent], ['Delivered', f.delivered], ['Read', f.read], ['Failed', f.failed]].map(analyticsRow),
    ...Object.entries(f.failedByCode).map(([code, n]) => analyticsRow([`  error ${code}`, n])),
  );
  $('#analytics-taps tbody').replaceChildren(...a.taps.map((t) => analyticsRow([t.templateKey, t.title || t.option, t.count])));
  $('#analytics-rules tbody').replaceChildren(...a.ruleHits.map((h) => analyticsRow([h.ruleId, h.count])));
  $('#tab-analytics').dataset.loaded = String(a.totals.inbound + a.totals.outbound);
}

$('#analytics-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  loadAnalytics();
});

// ---- event subscriptions ------------------------------------------------------------------

function subscriptionRow(sub) {
  const tr = document.createElement('tr');
  tr.dataset.id = sub.id;
  const created = node('td', null, null);
  created.append(timeNode(sub.createdAt));
  const actions = node('td', null, null);
  const show = node('button', null, 'Deliveries');
  show.type = 'button';
  show.setAttribute('aria-label', `Deliveries to ${sub.url}`);
  show.addEventListener('click', () => showDeliveries(sub));
  const del = node('button', null, 'Delete');
  del.type = 'button';
  del.setAttribute('aria-label', `Delete the subscription to ${sub.url}`);
  del.addEventListener('click', () => deleteSubscription(sub));
  actions.append(show, ' ', del);
  tr.append(node('td', null, sub.url), node('td', null, sub.events.join(', ')), created, actions);
  return tr;
}

async function showDeliveries(sub) {
  const id = state.tenant;
  const r = await api('GET', tenantPath(`/event-subscriptions/${sub.id}/deliveries`));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#subs-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  $('#deliveries-title').textContent = `Deliveries to ${sub.url}`;
  $('#deliveries tbody').replaceChildren(...r.data.deliveries.map((d) => {
    const tr = document.createElement('tr');
    const at = node('td', null, null);
    at.append(timeNode(d.at));
    tr.append(at, node('td', null, d.eventId), node('td', null, d.eventType), node('td', null, String(d.attempt)),
      node('td', d.ok ? null : 'why', d.status ? String(d.status) : 'unreachable'), node('td', 'why', d.error || ''));
    return tr;
  }));
  $('#deliveries-box').hidden = false;
  $('#deliveries-box').dataset.count = String(r.data.deliveries.length);
}

async function deleteSubscription(sub) {
  if (!confirm(`Stop forwarding events to ${sub.url}?`)) return;
  const id = state.tenant;
  const r = await api('DELETE', tenantPath(`/event-subscriptions/${sub.id}`));
  if (id !== state.tenant) return;
  if (r.status !== 200) {
    say('#subs-error', (r.data && r.data.message) || `Error ${r.status}`, true);
    return;
  }
  $('#deliveries-box').hidden = true;
  say('#sub-message', `Subscription to ${sub.url} deleted`);
  await loadAccess();
}

$('#sub-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = $('#sub-form');
  clearErrors(form);
  say('#sub-message', '');
  $('#new-secret').hidden = true;
  const events = [...$('#sub-events').querySelectorAll('input:checked')].map((i) => i.value);
  const id = state.tenant;
  const r = await api('POST', tenantPath('/event-subscriptions'), { url: $('#sub-url').value.trim(), events });
  if (id !== state.tenant) return;
  if (r.status === 201) {
    $('#sub-url').value = '';
    $('#new-secret-value').textContent = r.data.secret;
    $('#new-secret').hidden = false;
    say('#sub-message', `Subscribed ${r.data.subscription.url}`);
    await loadAccess();
    return;
  }
  const field = r.status === 422 && r.data && r.data.field;
  if (field && (fieldError(form, field, r.data.message) || fieldError(form, field.replace(/\[\d+\]$/, ''), r.data.message))) return;
  say('#sub-message', (r.data && r.data.message) || `Error ${r.status}`, true);
});
