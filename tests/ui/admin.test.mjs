// The Template Builder in headless Debian Chromium, against the local gateway started by
// infra/with-gateway.sh (BASE_URL, ADMIN_TOKEN, TENANT_ID).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const ADMIN = process.env.ADMIN_TOKEN;
// infra/with-gateway.sh sets APP_SECRET: webhooks are then signed as Meta signs them.
const APP_SECRET = process.env.APP_SECRET;
// Screenshots go to a temp dir; `SCREENSHOT_DIR=docs make test-ui` refreshes the README's.
const REPO = new URL('../../', import.meta.url).pathname;
const SHOTS = `${process.env.SCREENSHOT_DIR ? resolve(REPO, process.env.SCREENSHOT_DIR) : tmpdir()}/`;
let browser;
let page;

before(async () => {
  assert.ok(BASE && ADMIN, 'run through make test-ui (infra/with-gateway.sh)');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => { throw e; });
  await page.goto(`${BASE}/admin`);
  await page.getByLabel('Admin token or tenant API key').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#app').waitFor();
});

after(async () => { await browser?.close(); });

async function saveTemplate({ body, buttons = [] }) {
  await page.getByRole('button', { name: 'New template' }).click();
  if (buttons.length) await page.getByLabel('Kind').selectOption('interactive_button');
  await page.getByLabel('Message', { exact: true }).fill(body);
  for (const [i, b] of buttons.entries()) {
    if (i > 0) await page.getByRole('button', { name: 'Add button' }).click();
    await page.locator(`#b${i}-title`).fill(b.title);
    if (b.next) await page.locator(`#b${i}-next`).selectOption(b.next);
  }
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  const key = await page.locator('#t-key').inputValue();
  assert.match(key, /^tmpl_[0-9a-f]{8}$/, 'the backend-generated key is shown');
  return key;
}

// A customer's text message as Meta delivers it to the webhook, for the tenant the page shows;
// `at` is when they wrote (Meta's timestamp), which opens their 24-hour window. With `reply`
// (`{id, title}`) it is a tap on a reply button instead.
async function inbound(to, { name = 'Ana', body = 'Is the shop open?', at = Date.now(), reply } = {}) {
  const tenantId = await page.locator('#tenant').inputValue();
  const shown = await fetch(`${BASE}/tenants/${tenantId}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(shown.status, 200);
  const { phoneNumberId } = (await shown.json()).tenant;
  const waId = to.replace(/^\+/, '');
  const payload = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '1',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '1', phone_number_id: phoneNumberId },
          contacts: [{ profile: { name }, wa_id: waId }],
          messages: [{
            from: waId,
            id: `wamid.${randomBytes(12).toString('hex')}`,
            timestamp: String(Math.floor(at / 1000)),
            ...(reply ? { type: 'interactive', interactive: { type: 'button_reply', button_reply: reply } } : { type: 'text', text: { body } }),
          }],
        },
      }],
    }],
  });
  const headers = { 'Content-Type': 'application/json' };
  if (APP_SECRET) headers['X-Hub-Signature-256'] = `sha256=${createHmac('sha256', APP_SECRET).update(payload).digest('hex')}`;
  const r = await fetch(`${BASE}/whatsapp/webhook`, { method: 'POST', headers, body: payload });
  const answer = await r.text();
  assert.equal(r.status, 200, answer);
  assert.equal(JSON.parse(answer).messages, 1, answer);
}

// Saves the open template and returns the JSON body the page sent.
async function saveAndCapture() {
  const [request] = await Promise.all([
    page.waitForRequest((r) => ['POST', 'PUT'].includes(r.method()) && /\/templates(\/[^/]+)?$/.test(new URL(r.url()).pathname)),
    page.getByRole('button', { name: 'Save', exact: true }).click(),
  ]);
  return request.postDataJSON();
}

const kindCell = (key) => page.locator(`#templates tr[data-key="${key}"] td`).nth(1);

let keys = {};

test('builds a three-level menu and shows the generated keys', async () => {
  keys.prices = await saveTemplate({ body: 'Latte 3.20, cappuccino 3.00' });
  keys.hours = await saveTemplate({ body: 'Open 8-18, {{customer_name}}' });
  keys.more = await saveTemplate({ body: 'More options', buttons: [{ title: 'Opening hours', next: keys.hours }] });
  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Kind').selectOption('interactive_button');
  await page.getByLabel('Message', { exact: true }).fill('Hi {{customer_name}}! Pick one');
  assert.equal((await page.locator('#preview').innerText()).split('\n')[0], 'Hi Ana! Pick one', 'live preview with sample values');
  assert.equal(await page.locator('#body-count').innerText(), '30 / 1024');
  keys.main = await saveTemplate({
    body: 'Hi {{customer_name}}! Pick one',
    buttons: [{ title: 'Prices', next: keys.prices }, { title: 'Hours', next: keys.hours }, { title: 'More', next: keys.more }],
  });
  assert.equal(await page.getByRole('button', { name: 'Add button' }).isDisabled(), true, 'at most 3 buttons');
  for (const i of [0, 1, 2]) assert.match(await page.locator(`#b${i}-id`).inputValue(), /^btn_/, 'payload ids generated, read-only');
  assert.equal(await page.locator('#b0-id').getAttribute('readonly'), '');
  assert.equal(new Set(Object.values(keys)).size, 4);
  const rows = await page.locator('#templates tbody tr').count();
  assert.equal(rows, 4);
  await page.screenshot({ path: `${SHOTS}builder.png` });
});

test('a 21-character title gets the server 422 next to the field', async () => {
  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Kind').selectOption('interactive_button');
  await page.getByLabel('Message', { exact: true }).fill('Too long');
  await page.locator('#b0-title').fill('This title is 21 chr');
  await page.locator('#b0-title').press('End');
  await page.locator('#b0-title').type('s');
  assert.equal(await page.locator('.b-count').first().innerText(), '21 / 20');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const error = page.locator('.field-error[data-error-for="buttons[0].title"]');
  await error.waitFor();
  assert.match(await error.innerText(), /at most 20 characters/);
  assert.equal(await page.locator('#b0-title').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#templates tbody tr').count(), 4, 'nothing saved');
});

test('a flow rule leads into the menu, and the map shows 4 nodes and the right edges', async () => {
  await page.getByRole('tab', { name: 'Flows' }).click();
  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.locator('#r0-id').fill('greet');
  await page.locator('#r0-values').fill('hi, hello');
  await page.locator('#r0-template').selectOption(keys.main);
  await page.getByRole('button', { name: 'Save flow' }).click();
  await page.locator('#flow-saved', { hasText: 'Saved' }).waitFor();

  await page.getByRole('tab', { name: 'Conversation map' }).click();
  assert.equal(await page.locator('#map .node.template').count(), 4);
  const edges = await page.locator('#map .edge').evaluateAll((es) => es.map((e) => `${e.dataset.from}>${e.dataset.to}:${e.dataset.label}`).sort());
  assert.deepEqual(edges, [
    `${keys.main}>${keys.hours}:Hours`,
    `${keys.main}>${keys.more}:More`,
    `${keys.main}>${keys.prices}:Prices`,
    `${keys.more}>${keys.hours}:Opening hours`,
    `entry>${keys.main}:hi, hello`,
  ].sort());
  assert.equal(await page.locator('#map .node.unreachable').count(), 0);
  await page.locator('#tab-map').screenshot({ path: `${SHOTS}map.png` });
});

test('deactivating a referenced template shows who still points to it', async () => {
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  await page.locator(`#templates tr[data-key="${keys.prices}"]`).click();
  await page.getByRole('button', { name: 'Deactivate' }).click();
  const error = page.locator('#template-form [data-error-for="form"]');
  await error.waitFor();
  const text = await error.innerText();
  assert.match(text, /still referenced by/);
  assert.ok(text.includes(keys.main) && text.includes('Prices'), text);
});

test('an unreachable template is highlighted on the map', async () => {
  keys.orphan = await saveTemplate({ body: 'Nobody links here' });
  await page.getByRole('tab', { name: 'Conversation map' }).click();
  assert.equal(await page.locator(`#map .node.unreachable[data-key="${keys.orphan}"]`).count(), 1);
  assert.match(await page.locator('#map-problems').innerText(), /cannot be reached/);
});

test('a test send appears in the message log with its live status', async () => {
  // The customer writes first: a free-form message needs their 24-hour window open.
  await inbound('+34600111222', { name: 'Ana' });
  await page.getByRole('tab', { name: 'Test send' }).click();
  await page.getByLabel('To (E.164)').fill('+34600111222');
  await page.locator('#send-template').selectOption(keys.hours);
  await page.locator('#var-customer_name').fill('Ana');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#send-result', { hasText: 'Queued' }).waitFor();
  await page.locator('#log tbody tr[data-status="sent"]', { hasText: 'Open 8-18, Ana' }).waitFor({ timeout: 15000 });
});

test('a list template: header, footer and rows in the preview, saved in the API shape with row ids', async () => {
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Kind').selectOption('interactive_list');
  await page.getByLabel('Message', { exact: true }).fill('Hi {{customer_name}}, what would you like?');
  await page.locator('#t-header-type').selectOption('text');
  await page.locator('#t-header-text').fill('Demo Coffee');
  await page.locator('#t-footer').fill('Open 8-18 every day');
  await page.locator('#t-list-button').fill('See options');
  await page.locator('#s0-title').fill('Drinks');
  await page.locator('#s0r0-title').fill('Prices');
  await page.locator('#s0r0-desc').fill('Coffee and tea');
  await page.locator('#s0r0-next').selectOption(keys.prices);
  await page.getByRole('button', { name: 'Add row to section 1' }).click();
  await page.locator('#s0r1-title').fill('Hours');
  await page.locator('#s0r1-next').selectOption(keys.hours);
  await page.locator('#s0r1-state').fill('asked_hours');
  await page.getByRole('button', { name: 'Add section' }).click();
  await page.locator('#s1-title').fill('Other');
  await page.locator('#s1r0-title').fill('More');
  await page.locator('#s1r0-next').selectOption(keys.more);
  assert.equal(await page.locator('#rows-count').innerText(), '3 / 10 rows');
  assert.equal(await page.locator('#body-count').innerText(), '42 / 1024');

  const preview = page.locator('#preview');
  assert.deepEqual(await preview.evaluate((p) => [...p.children].map((c) => c.className)), ['p-header', 'p-body', 'p-footer', 'chips', 'list-sheet']);
  assert.equal(await preview.locator('.p-header').innerText(), 'Demo Coffee');
  assert.equal(await preview.locator('.p-body').innerText(), 'Hi Ana, what would you like?');
  assert.equal(await preview.locator('.p-footer').innerText(), 'Open 8-18 every day');
  assert.equal(await preview.locator('.list-sheet').isHidden(), true, 'the rows open with the list button');
  await preview.getByRole('button', { name: 'See options' }).click();
  assert.equal(await preview.getByRole('button', { name: 'See options' }).getAttribute('aria-expanded'), 'true');
  assert.equal(await preview.locator('.list-sheet').isVisible(), true);
  assert.deepEqual(await preview.locator('.list-section-title').allTextContents(), ['Drinks', 'Other']);
  assert.deepEqual(await preview.locator('.list-row-title').allTextContents(), ['Prices', 'Hours', 'More']);
  assert.match(await preview.locator('.list-row').first().innerText(), /Coffee and tea/);

  const sent = await saveAndCapture();
  assert.deepEqual(sent, {
    body: 'Hi {{customer_name}}, what would you like?',
    kind: 'interactive_list',
    button: 'See options',
    sections: [
      { title: 'Drinks', rows: [{ title: 'Prices', description: 'Coffee and tea', nextTemplateKey: keys.prices }, { title: 'Hours', nextTemplateKey: keys.hours, nextState: 'asked_hours' }] },
      { title: 'Other', rows: [{ title: 'More', nextTemplateKey: keys.more }] },
    ],
    header: { type: 'text', text: 'Demo Coffee' },
    footer: 'Open 8-18 every day',
  });
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  keys.list = await page.locator('#t-key').inputValue();
  assert.match(keys.list, /^tmpl_[0-9a-f]{8}$/);
  for (const id of ['#s0r0-id', '#s0r1-id', '#s1r0-id']) assert.match(await page.locator(id).inputValue(), /^row_[0-9a-f]+$/, 'row ids generated');
  assert.equal(await page.locator('#s0r0-id').getAttribute('readonly'), '');
  assert.equal(await page.locator('#t-header-text').inputValue(), 'Demo Coffee', 'the header is read back');
  assert.equal(await page.locator('#t-footer').inputValue(), 'Open 8-18 every day');
  assert.equal(await page.locator('#s0r1-state').inputValue(), 'asked_hours');
  assert.equal(await kindCell(keys.list).innerText(), 'list (3 rows)');
});

test('a 25-character list row title gets the server 422 next to it, and a list stops at 10 rows', async () => {
  await page.locator(`#templates tr[data-key="${keys.list}"]`).click();
  await page.locator('#s0r0-title').fill('Prices, coffees and teas!');
  assert.equal(await page.locator('.l-title-count').first().innerText(), '25 / 24');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const error = page.locator('.field-error[data-error-for="sections[0].rows[0].title"]');
  await error.waitFor();
  assert.match(await error.innerText(), /at most 24 characters/);
  assert.equal(await page.locator('#s0r0-title').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator(`#templates tr[data-key="${keys.list}"] td`).nth(3).innerText(), '1', 'nothing saved');

  await page.locator('#s0r0-title').fill('Prices');
  for (let row = 1; row <= 7; row += 1) {
    await page.getByRole('button', { name: 'Add row to section 2' }).click();
    await page.locator(`#s1r${row}-title`).fill(`Option ${row + 3}`);
  }
  assert.equal(await page.locator('#rows-count').innerText(), '10 / 10 rows');
  assert.equal(await page.getByRole('button', { name: 'Add row to section 1' }).isDisabled(), true, 'no 11th row');
  assert.equal(await page.getByRole('button', { name: 'Add row to section 2' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Add section' }).isDisabled(), true, 'a section brings a row');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  assert.equal(await page.locator('#template-form .field-error').count(), 0);
  assert.equal(await kindCell(keys.list).innerText(), 'list (10 rows)');
  assert.equal(await page.locator('#s1r7-title').inputValue(), 'Option 10');
});

test('a media header and footer in the preview, a bad link refused next to it, and a text template with a document', async () => {
  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Kind').selectOption('interactive_button');
  await page.getByLabel('Message', { exact: true }).fill('Our new menu is out');
  await page.locator('#b0-title').fill('Order');
  assert.equal(await page.locator('#media-fieldset').isHidden(), true, 'interactive templates take a header, not media');
  await page.locator('#t-header-type').selectOption('image');
  assert.equal(await page.locator('#t-header-text').isHidden(), true);
  await page.locator('#t-header-link').fill('ftp://example.com/menu.jpg');
  await page.locator('#t-footer').fill('Prices include VAT');
  const preview = page.locator('#preview');
  assert.deepEqual(await preview.evaluate((p) => [...p.children].map((c) => c.className)), ['p-media', 'p-body', 'p-footer', 'chips']);
  assert.equal(await preview.locator('.p-media[data-type="image"] .p-media-kind').innerText(), 'Image');
  assert.equal(await preview.locator('.p-footer').innerText(), 'Prices include VAT');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const error = page.locator('.field-error[data-error-for="header.link"]');
  await error.waitFor();
  assert.match(await error.innerText(), /http\(s\) URL/);
  assert.equal(await page.locator('#t-header-link').getAttribute('aria-invalid'), 'true');

  await page.locator('#t-header-link').fill('https://example.com/menu.jpg');
  assert.deepEqual(await saveAndCapture(), {
    body: 'Our new menu is out',
    kind: 'interactive_button',
    buttons: [{ title: 'Order' }],
    header: { type: 'image', link: 'https://example.com/menu.jpg' },
    footer: 'Prices include VAT',
  });
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  assert.equal(await page.locator('#t-header-type').inputValue(), 'image', 'the header is read back');
  assert.equal(await page.locator('#t-header-link').inputValue(), 'https://example.com/menu.jpg');

  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Message', { exact: true }).fill('Our price list');
  assert.equal(await page.locator('#header-fieldset').isHidden(), true, 'text templates take media, not a header');
  assert.equal(await page.locator('#body-count').innerText(), '14 / 4096');
  await page.getByLabel('File type').selectOption('document');
  await page.locator('#t-media-link').fill('https://example.com/prices.pdf');
  await page.locator('#t-media-filename').fill('prices.pdf');
  assert.equal(await page.locator('#body-count').innerText(), '14 / 1024', 'the body is the caption');
  assert.match(await preview.locator('.p-media[data-type="document"]').innerText(), /Document[\s\S]*prices\.pdf/);
  assert.equal(await preview.locator('.p-footer').count(), 0);
  assert.deepEqual(await saveAndCapture(), {
    body: 'Our price list',
    kind: 'text',
    media: { type: 'document', link: 'https://example.com/prices.pdf', filename: 'prices.pdf' },
  });
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  assert.equal(await kindCell(await page.locator('#t-key').inputValue()).innerText(), 'text + document');
});

test('Meta templates: a hint to set the wabaId, then the empty state', async () => {
  await page.getByRole('tab', { name: 'Meta templates' }).click();
  const hint = page.locator('#meta-waba-hint');
  await hint.waitFor();
  assert.match(await hint.innerText(), /no WhatsApp Business Account ID \(wabaId\)/);
  assert.equal(await page.locator('#meta-templates tbody tr').count(), 0);
  assert.equal(await page.locator('#meta-empty').isHidden(), true, 'no empty state: the list cannot be read');
  assert.equal(await page.locator('#meta-error').textContent(), '');

  await page.getByLabel('WABA ID').fill('12ab');
  await page.getByRole('button', { name: 'Save WABA ID' }).click();
  const error = page.locator('#waba-form .field-error[data-error-for="wabaId"]');
  await error.waitFor();
  assert.match(await error.innerText(), /1–32 digits/);

  await page.getByLabel('WABA ID').fill('102290129340398');
  await page.getByRole('button', { name: 'Save WABA ID' }).click();
  await page.locator('#meta-empty').waitFor();
  assert.match(await page.locator('#meta-empty').innerText(), /Sync from Meta/);
  assert.equal(await hint.isHidden(), true);
  assert.equal(await page.locator('#waba-message').innerText(), 'WABA ID saved.');
  assert.equal(await page.locator('#meta-send-form').isHidden(), true, 'nothing to send yet');
  assert.equal(await page.getByRole('button', { name: 'Sync from Meta' }).isEnabled(), true);
});

test('customers: window badges after inbound messages, and a closed window explained on Test send', async () => {
  const suffix = String(Date.now()).slice(-5);
  const fresh = `+3460044${suffix}`;
  const stale = `+3460055${suffix}`;
  await inbound(fresh, { name: 'Bea' });
  await inbound(stale, { name: 'Carlos', at: Date.now() - 48 * 3600 * 1000 });

  await page.getByRole('tab', { name: 'Customers' }).click();
  const open = page.locator(`#customers tbody tr[data-wa-id="${fresh.slice(1)}"]`);
  await open.waitFor();
  assert.match(await open.innerText(), /Bea/);
  assert.equal(await open.getAttribute('data-window'), 'open');
  assert.match(await open.locator('.badge').innerText(), /^window open until \S/);
  const closed = page.locator(`#customers tbody tr[data-wa-id="${stale.slice(1)}"]`);
  assert.match(await closed.innerText(), /Carlos/);
  assert.equal(await closed.getAttribute('data-window'), 'closed');
  assert.equal(await closed.locator('.badge').innerText(), 'window closed');

  await closed.getByRole('button', { name: 'Test send' }).click();
  assert.equal(await page.getByRole('tab', { name: 'Test send' }).getAttribute('aria-selected'), 'true');
  assert.equal(await page.getByLabel('To (E.164)').inputValue(), stale);
  await page.locator('#send-window .badge[data-window="closed"]').waitFor();
  assert.match(await page.locator('#send-window').innerText(), /only an approved Meta template/i);
  await page.locator('#send-template').selectOption(keys.prices);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  const error = page.locator('#send-error');
  const toMeta = error.getByRole('button', { name: 'Open Meta templates' });
  await toMeta.waitFor();
  assert.match(await error.innerText(), /outside the 24-hour customer service window/);
  assert.equal(await page.locator('#send-result').innerText(), '', 'nothing queued');
  await toMeta.click();
  assert.equal(await page.getByRole('tab', { name: 'Meta templates' }).getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('#meta-to').inputValue(), stale);
});

test('usable at phone width and by keyboard', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('[hidden]') && !e.closest('table, .map-wrap'))
    .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`));
  assert.ok(overflow <= 1, `no horizontal scrolling (${overflow}px): ${wide.join(', ')}`);
  await page.getByRole('tab', { name: 'Templates', exact: true }).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByRole('tab', { name: 'Flows' }).getAttribute('aria-selected'), 'true');
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('tenant settings: token status, pacing with a 422, and a replaced token', async () => {
  // A tenant of its own (mock_ tokens are accepted with APP_ENV=development), so the demo
  // tenant keeps its settings and its mock_ token; a second tenant also enables the picker.
  const admin = { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' };
  const registered = await fetch(`${BASE}/tenants/register`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: 'Settings Bakery', phoneNumberId: `1666${String(Date.now()).slice(-8)}`, accessToken: 'mock_settings' }),
  });
  assert.equal(registered.status, 201);
  const { tenant, apiKey } = await registered.json();
  const current = async () => {
    const r = await fetch(`${BASE}/tenants/${tenant.id}`, { headers: admin });
    assert.equal(r.status, 200);
    return (await r.json()).tenant;
  };

  await page.reload(); // the tenant list is read at sign-in
  await page.locator('#app').waitFor();
  await page.getByLabel('Tenant', { exact: true }).selectOption(tenant.id);
  await page.locator(`#settings-section[data-tenant="${tenant.id}"]`).waitFor();
  assert.equal(await page.locator('#token-status').getAttribute('data-status'), 'valid');
  assert.match(await page.locator('#token-status').innerText(), /Token valid/);
  assert.equal(await page.locator('#paused-until').isHidden(), true);
  const fields = ['#throughput', '#customer-burst', '#customer-interval', '#marketing-backoff'];
  assert.deepEqual(await Promise.all(fields.map((s) => page.locator(s).inputValue())), ['80', '45', '6', '60'], 'defaults');

  await page.getByLabel('Throughput per second').fill('20');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('#settings-message', { hasText: 'saved' }).waitFor();
  assert.equal(await page.locator('#throughput').inputValue(), '20');
  assert.deepEqual((await current()).settings, { throughputPerSecond: 20, customerBurst: 45, customerIntervalSeconds: 6, marketingBackoffMinutes: 60 });

  await page.getByLabel('Throughput per second').fill('5000');
  await page.getByRole('button', { name: 'Save settings' }).click();
  const error = page.locator('#settings-form .field-error[data-error-for="throughputPerSecond"]');
  await error.waitFor();
  assert.match(await error.innerText(), /throughputPerSecond/);
  assert.equal(await page.locator('#throughput').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#settings-message').innerText(), '', 'no confirmation');
  assert.equal((await current()).settings.throughputPerSecond, 20, 'nothing saved');

  await page.getByRole('button', { name: 'Replace token' }).click();
  await page.locator('#token-form .field-error[data-error-for="accessToken"]').waitFor();
  const newToken = `EAAnew${Date.now()}FromTheUiTest`;
  await page.getByLabel('New access token').fill(newToken);
  await page.getByRole('button', { name: 'Replace token' }).click();
  await page.locator('#token-message', { hasText: 'released' }).waitFor();
  assert.match(await page.locator('#token-message').innerText(), /Token replaced; 0 held messages released/);
  assert.equal(await page.locator('#token-form .field-error').count(), 0, 'the empty-token error is gone');
  assert.equal(await page.locator('#new-access-token').inputValue(), '', 'input cleared');
  assert.equal(await page.locator('#token-status').getAttribute('data-status'), 'valid');
  assert.ok(!(await page.content()).includes(newToken), 'the token is not echoed');
  assert.equal((await current()).tokenStatus.status, 'valid');

  // With the tenant's own API key: status and values read-only, both forms disabled.
  const tenantPage = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  tenantPage.on('pageerror', (e) => { throw e; });
  try {
    await tenantPage.goto(`${BASE}/admin`);
    await tenantPage.locator('#token').fill(apiKey);
    await tenantPage.locator('#signin-tenant').fill(tenant.id);
    await tenantPage.getByRole('button', { name: 'Sign in' }).click();
    await tenantPage.locator(`#settings-section[data-tenant="${tenant.id}"]`).waitFor();
    assert.match(await tenantPage.locator('#token-status').innerText(), /Token valid/);
    assert.equal(await tenantPage.locator('#throughput').inputValue(), '20');
    assert.equal(await tenantPage.locator('#save-settings').isDisabled(), true);
    assert.equal(await tenantPage.locator('#replace-token').isDisabled(), true);
    assert.equal(await tenantPage.locator('#new-access-token').isDisabled(), true);
    assert.match(await tenantPage.locator('#settings-readonly').innerText(), /needs the admin token/);
  } finally {
    await tenantPage.close();
  }
});

// ---- guided input, state-aware rules, hand-off, opt-out and the simulator ----------------

const adminJson = { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' };
const guided = {};

// A tenant of its own (a mock_ token), opened in the page once everything of it is shown.
// A new tenant (a mock_ token), selected in the page; its API key as `apiKey`.
async function openNewTenant(name, phoneNumberId = `1777${String(Date.now()).slice(-8)}`) {
  const registered = await fetch(`${BASE}/tenants/register`, {
    method: 'POST',
    headers: adminJson,
    body: JSON.stringify({ name, phoneNumberId, accessToken: 'mock_guided' }),
  });
  assert.equal(registered.status, 201);
  const { tenant, apiKey } = await registered.json();
  await page.reload(); // the tenant list is read at sign-in
  await page.locator('#app').waitFor();
  await page.getByLabel('Tenant', { exact: true }).selectOption(tenant.id);
  await page.locator(`#app[data-tenant="${tenant.id}"]`).waitFor();
  return Object.assign(tenant, { apiKey });
}

async function apiGet(path) {
  const r = await fetch(`${BASE}${path}`, { headers: adminJson });
  assert.equal(r.status, 200, path);
  return r.json();
}

test('guided input: a template capturing a number, saved in the API shape, in the table and on the map', async () => {
  guided.tenant = await openNewTenant('Guided Bank');
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  guided.done = await saveTemplate({ body: 'Done! Your statement is on its way.' });
  guided.confirm = await saveTemplate({ body: 'Send the statement for {{vars.account}}?', buttons: [{ title: 'Yes', next: guided.done }, { title: 'No' }] });

  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Message', { exact: true }).fill('What is your account number?');
  assert.equal(await page.locator('#t-capture-fields').isHidden(), true, 'no capture until asked for');
  await page.locator('#t-capture').check();
  assert.equal(await page.locator('#t-cap-variable').isVisible(), true);
  await page.locator('#t-cap-variable').fill('account');
  assert.match(await page.locator('#t-cap-variable-hint').innerText(), /\{\{vars\.account\}\}/);
  assert.equal(await page.locator('#t-cap-min').isVisible(), true, 'text: min and max length');
  assert.equal(await page.locator('#t-cap-pattern').isHidden(), true, 'a pattern is for regex only');
  await page.locator('#t-cap-type').selectOption('number');
  assert.equal(await page.locator('#t-cap-min-label').innerText(), 'Minimum value');
  assert.equal(await page.locator('#t-cap-attempts').inputValue(), '3', 'three attempts by default');
  await page.locator('#t-cap-next').selectOption(guided.confirm);
  await page.locator('#t-cap-state').fill('confirming');
  assert.deepEqual(await saveAndCapture(), {
    body: 'What is your account number?',
    kind: 'text',
    capture: { variable: 'account', type: 'number', maxAttempts: 3, nextTemplateKey: guided.confirm, nextState: 'confirming' },
  });
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  guided.ask = await page.locator('#t-key').inputValue();
  assert.equal(await kindCell(guided.ask).innerText(), 'text + capture account');
  assert.equal(await page.locator('#t-capture').isChecked(), true, 'the capture is read back');
  assert.equal(await page.locator('#t-cap-type').inputValue(), 'number');
  assert.equal(await page.locator('#t-cap-next').inputValue(), guided.confirm);
  assert.equal(await page.locator('#t-cap-state').inputValue(), 'confirming');

  guided.menu = await saveTemplate({ body: 'Hi! What do you need?', buttons: [{ title: 'Statement', next: guided.ask }] });
  await page.getByRole('tab', { name: 'Conversation map' }).click();
  const capture = page.locator(`#map .edge.capture[data-from="${guided.ask}"]`);
  assert.equal(await capture.getAttribute('data-to'), guided.confirm);
  assert.equal(await capture.getAttribute('data-label'), 'account (number)');
});

test('flows: a rule for some states only and a hand-off rule, in the API shape; a 65-character state refused at its field', async () => {
  await page.getByRole('tab', { name: 'Flows' }).click();
  for (const [i, rule] of [['greet', 'hi, hello'], ['cancel', 'no, cancel'], ['agent', 'agent, human']].entries()) {
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.locator(`#r${i}-id`).fill(rule[0]);
    await page.locator(`#r${i}-values`).fill(rule[1]);
  }
  await page.locator('#r0-template').selectOption(guided.menu);
  await page.locator('#r1-template').selectOption(guided.menu);
  await page.locator('#r1-state').fill('menu');
  await page.locator('#r1-states').fill('x'.repeat(65));
  await page.locator('#r2-action').selectOption('handoff');
  assert.equal(await page.locator('#r2-template option').first().innerText(), '(no message)', 'a hand-off may send nothing');

  await page.getByRole('button', { name: 'Save flow' }).click();
  const error = page.locator('#tab-flows .field-error[data-error-for="flows[1].states"]');
  await error.waitFor();
  assert.match(await error.innerText(), /at most 64 characters/);
  assert.equal(await page.locator('#r1-states').getAttribute('aria-invalid'), 'true');

  await page.locator('#r1-states').fill('confirming');
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname.endsWith('/flows')),
    page.getByRole('button', { name: 'Save flow' }).click(),
  ]);
  assert.deepEqual(request.postDataJSON(), {
    flows: [
      { id: 'greet', match: { type: 'equals', values: ['hi', 'hello'] }, action: { type: 'send_template', templateKey: guided.menu } },
      { id: 'cancel', match: { type: 'equals', values: ['no', 'cancel'] }, action: { type: 'send_template', templateKey: guided.menu, setState: 'menu' }, states: ['confirming'] },
      { id: 'agent', match: { type: 'equals', values: ['agent', 'human'] }, action: { type: 'handoff' } },
    ],
    fallbackTemplateKey: null,
  });
  await page.locator('#flow-saved', { hasText: 'Saved' }).waitFor();
  assert.equal(await page.locator('#tab-flows .field-error').count(), 0);
  assert.equal(await page.locator('#r1-states').inputValue(), 'confirming', 'read back');
  assert.equal(await page.locator('#r2-action').inputValue(), 'handoff');

  await page.getByRole('tab', { name: 'Conversation map' }).click();
  const edges = await page.locator('#map .edge').evaluateAll((es) => es.map((e) => `${e.dataset.from}>${e.dataset.to}:${e.dataset.label}`).sort());
  assert.deepEqual(edges, [
    `${guided.menu}>${guided.ask}:Statement`,
    `${guided.ask}>${guided.confirm}:account (number)`,
    `${guided.confirm}>${guided.done}:Yes`,
    `entry>${guided.menu}:hi, hello`,
    `entry>${guided.menu}:no, cancel [confirming]`,
  ].sort());
  assert.equal(await page.locator('#map .node.unreachable').count(), 0);
});

test('Try it walks the guided flow: menu, a refused answer, the captured account, Yes; a hand-off and a reset', async () => {
  await page.getByRole('tab', { name: 'Try it' }).click();
  const calls = [];
  const seen = (r) => { if (new URL(r.url()).pathname.startsWith('/tenants')) calls.push(`${r.method()} ${new URL(r.url()).pathname}`); };
  page.on('request', seen);
  try {
    const chat = page.locator('#try-chat');
    const bot = chat.locator('.msg.bot');
    const lastBot = () => bot.last();
    const say = async (text) => {
      await page.locator('#try-text').fill(text);
      const [request] = await Promise.all([
        page.waitForRequest((r) => new URL(r.url()).pathname.endsWith('/simulate')),
        page.locator('#try-text').press('Enter'),
      ]);
      return request.postDataJSON();
    };
    assert.match(await page.locator('#try-conversation').innerText(), /New conversation/);

    assert.deepEqual(await say('Hi'), { text: 'Hi' }, 'a new chat posts no conversation');
    await bot.nth(0).waitFor();
    assert.equal(await lastBot().locator('.p-body').innerText(), 'Hi! What do you need?');
    assert.match(await lastBot().locator('.cause').innerText(), new RegExp(`${guided.menu} · rule greet`));
    assert.equal(await chat.locator('.msg.me').last().innerText(), 'Hi');

    await lastBot().getByRole('button', { name: 'Statement', exact: true }).click();
    await bot.nth(1).waitFor();
    assert.equal(await lastBot().locator('.p-body').innerText(), 'What is your account number?');
    assert.match(await chat.locator('.msg.me').last().innerText(), /Statement/);

    await say('12ab');
    await bot.nth(2).waitFor();
    assert.equal(await lastBot().locator('.p-body').innerText(), "That doesn't look like a number. Please try again.");
    assert.match(await lastBot().locator('.cause').innerText(), /built-in message · answer not accepted for \{\{vars\.account\}\} \(attempt 1\)/);

    const sent = await say('12345678');
    assert.equal(sent.text, '12345678');
    assert.equal(sent.conversation.lastTemplateKey, guided.ask, 'the conversation is posted back');
    assert.equal(sent.conversation.captureAttempts, 1);
    await bot.nth(3).waitFor();
    assert.equal(await lastBot().locator('.p-body').innerText(), 'Send the statement for 12345678?');
    assert.deepEqual(await lastBot().locator('button.chip').allInnerTexts(), ['Yes', 'No']);
    assert.match(await lastBot().locator('.cause').innerText(), /answer kept as \{\{vars\.account\}\}/);
    assert.match(await page.locator('#try-conversation').innerText(), /State: confirming.*account = 12345678/);

    const [yes] = await Promise.all([
      page.waitForRequest((r) => new URL(r.url()).pathname.endsWith('/simulate')),
      lastBot().getByRole('button', { name: 'Yes', exact: true }).click(),
    ]);
    assert.match(yes.postDataJSON().payloadId, /^btn_/, 'a tap sends the button id');
    assert.equal(yes.postDataJSON().conversation.vars.account, '12345678');
    await bot.nth(4).waitFor();
    assert.equal(await lastBot().locator('.p-body').innerText(), 'Done! Your statement is on its way.');

    await say('agent');
    const note = chat.locator('.msg.note').last();
    await note.waitFor();
    assert.equal(await note.locator('.no-reply').innerText(), 'No reply: a human has the conversation');
    assert.match(await note.locator('.cause').innerText(), /handed the conversation to a human until/);
    assert.match(await page.locator('#try-conversation').innerText(), /With a human/);

    await page.getByRole('button', { name: 'Reset conversation' }).click();
    assert.equal(await chat.locator('.msg').count(), 0);
    assert.match(await page.locator('#try-conversation').innerText(), /New conversation/);
    assert.deepEqual(await say('no'), { text: 'no' }, 'the reset chat starts without a conversation');
    await chat.locator('.msg.note').first().waitFor();
    assert.equal(await chat.locator('.msg.note .no-reply').innerText(), 'No reply: nothing matched', '"no" answers only in state confirming');
    await say('hello');
    await bot.nth(0).waitFor();
    assert.equal(await lastBot().locator('.p-body').innerText(), 'Hi! What do you need?');
    await page.locator('#tab-try').screenshot({ path: `${SHOTS}try-it.png` });
  } finally {
    page.off('request', seen);
  }
  assert.ok(calls.length >= 8, calls.join(', '));
  assert.deepEqual([...new Set(calls)], [`POST /tenants/${guided.tenant.id}/simulate`], 'the simulator only');
});

test('a regex capture without a pattern gets the server 422 at the pattern field', async () => {
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  const before = await page.locator('#templates tbody tr').count();
  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Message', { exact: true }).fill('Your policy number?');
  await page.locator('#t-capture').check();
  await page.locator('#t-cap-variable').fill('policy');
  await page.locator('#t-cap-type').selectOption('regex');
  assert.equal(await page.locator('#t-cap-pattern').isVisible(), true);
  assert.equal(await page.locator('#t-cap-min').isHidden(), true, 'min and max are for text and number');
  await page.locator('#t-cap-next').selectOption(guided.done);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const error = page.locator('.field-error[data-error-for="capture.pattern"]');
  await error.waitFor();
  assert.match(await error.innerText(), /required for type regex/);
  assert.equal(await page.locator('#t-cap-pattern').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#templates tbody tr').count(), before, 'nothing saved');

  await page.locator('#t-cap-pattern').fill('[A-Z]{2}[0-9]{6}');
  assert.deepEqual((await saveAndCapture()).capture, { variable: 'policy', type: 'regex', pattern: '[A-Z]{2}[0-9]{6}', maxAttempts: 3, nextTemplateKey: guided.done });
  await page.locator('#saved', { hasText: 'Saved as' }).waitFor();
  assert.equal(await page.locator('#template-form .field-error').count(), 0);
  assert.equal(await kindCell(await page.locator('#t-key').inputValue()).innerText(), 'text + capture policy');
});

test('customers: captured variables, a hand-off to a human and back, and an opted-out customer refused on Test send', async () => {
  const suffix = String(Date.now()).slice(-5);
  const ana = `+3460066${suffix}`;
  const ben = `+3460077${suffix}`;
  // Through the webhook: the menu, a tap on "Statement", then the account number.
  const { templates } = await apiGet(`/tenants/${guided.tenant.id}/templates`);
  const statement = templates.find((t) => t.key === guided.menu).buttons[0];
  await inbound(ana, { name: 'Ana', body: 'hi' });
  await inbound(ana, { name: 'Ana', reply: { id: statement.id, title: statement.title } });
  await inbound(ana, { name: 'Ana', body: '12345678' });
  await inbound(ben, { name: 'Ben', body: 'STOP' });

  await page.getByRole('tab', { name: 'Customers' }).click();
  const row = page.locator(`#customers tbody tr[data-wa-id="${ana.slice(1)}"]`);
  await row.waitFor();
  assert.match(await row.locator('dl.vars').innerText(), /account\s+12345678/);
  assert.match(await row.innerText(), /confirming/);
  assert.equal(await row.getAttribute('data-handoff'), 'bot');
  assert.equal(await row.locator('.badge.handoff').count(), 0);

  await row.locator('.handoff-minutes').fill('0');
  await row.getByRole('button', { name: 'Hand to a human' }).click();
  await row.locator('.field-error[data-error-for="minutes"]').waitFor();

  await row.locator('.handoff-minutes').fill('30');
  await row.getByRole('button', { name: 'Hand to a human' }).click();
  const handled = page.locator(`#customers tbody tr[data-wa-id="${ana.slice(1)}"][data-handoff="human"]`);
  await handled.waitFor();
  assert.match(await handled.locator('.badge.handoff').innerText(), /^Human handling until \S/);
  assert.match(await page.locator('#customers-status').innerText(), /with a human until/);
  const until = Date.parse((await apiGet(`/tenants/${guided.tenant.id}/customers/${ana.slice(1)}`)).customer.handoffUntil);
  assert.ok(Math.abs(until - Date.now() - 30 * 60000) < 5 * 60000, `handed off for 30 minutes (until ${new Date(until).toISOString()})`);

  await handled.getByRole('button', { name: 'Back to the bot' }).click();
  await page.locator(`#customers tbody tr[data-wa-id="${ana.slice(1)}"][data-handoff="bot"]`).waitFor();
  assert.equal(await row.locator('.badge.handoff').count(), 0);
  assert.equal((await apiGet(`/tenants/${guided.tenant.id}/customers/${ana.slice(1)}`)).customer.handoffUntil, null);

  const out = page.locator(`#customers tbody tr[data-wa-id="${ben.slice(1)}"]`);
  assert.equal(await out.getAttribute('data-opted-out'), 'true');
  assert.equal(await out.locator('.badge.opted-out').innerText(), 'Opted out');
  await out.getByRole('button', { name: 'Test send' }).click();
  await page.locator('#send-window .badge.opted-out').waitFor();
  await page.locator('#send-template').selectOption(guided.done);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  const error = page.locator('#send-error');
  await error.filter({ hasText: 'opted out' }).waitFor();
  assert.match(await error.innerText(), new RegExp(`Not sent: \\${ben} opted out.*START`));
  assert.equal(await page.locator('#send-result').innerText(), '', 'nothing queued');
});

test('tenant settings: reset keywords, a start template and the hand-off length saved; handoffMinutes 0 refused at the field', async () => {
  const id = guided.tenant.id;
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  assert.equal(await page.locator('#opt-out-keywords').inputValue(), 'STOP, UNSUBSCRIBE, BAJA, PARAR, ARRET', 'defaults');
  assert.equal(await page.locator('#opt-in-keywords').inputValue(), 'START');
  assert.equal(await page.locator('#handoff-minutes').inputValue(), '1440');
  assert.equal(await page.locator('#start-template').inputValue(), '');

  await page.getByLabel('Reset keywords').fill('menu, restart');
  await page.locator('#start-template').selectOption(guided.menu);
  await page.getByLabel('Hand-off length (minutes)').fill('30');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('#settings-message', { hasText: 'saved' }).waitFor();
  assert.deepEqual((await apiGet(`/tenants/${id}`)).tenant.bot, {
    resetKeywords: ['menu', 'restart'],
    startTemplateKey: guided.menu,
    optOutKeywords: ['STOP', 'UNSUBSCRIBE', 'BAJA', 'PARAR', 'ARRET'],
    optInKeywords: ['START'],
    handoffMinutes: 30,
  });
  assert.equal(await page.locator('#reset-keywords').inputValue(), 'menu, restart', 'read back');

  await page.getByLabel('Hand-off length (minutes)').fill('0');
  await page.getByRole('button', { name: 'Save settings' }).click();
  const error = page.locator('#settings-form .field-error[data-error-for="handoffMinutes"]');
  await error.waitFor();
  assert.match(await error.innerText(), /handoffMinutes/);
  assert.equal(await page.locator('#handoff-minutes').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#settings-message').innerText(), '', 'no confirmation');
  assert.equal((await apiGet(`/tenants/${id}`)).tenant.bot.handoffMinutes, 30, 'nothing saved');

  // The reset keyword starts over with the start template, in the simulator too.
  await page.getByRole('tab', { name: 'Try it' }).click();
  await page.getByRole('button', { name: 'Reset conversation' }).click();
  await page.locator('#try-text').fill('Restart');
  await page.locator('#try-text').press('Enter');
  const reply = page.locator('#try-chat .msg.bot').first();
  await reply.waitFor();
  assert.equal(await reply.locator('.p-body').innerText(), 'Hi! What do you need?');
  assert.match(await reply.locator('.cause').innerText(), /a reset keyword/);
});

// ---- access: labelled API keys and the tenant's status -----------------------------------

test('access: a labelled key shown once, listed, deleted and refused; the tenant disabled and active again', async () => {
  const tenant = await openNewTenant('Keys Bakery', `1776${String(Date.now()).slice(-8)}`);
  const { apiKey } = tenant;
  const asTenant = (key) => fetch(`${BASE}/tenants/${tenant.id}`, { headers: { Authorization: `Bearer ${key}` } });

  await page.getByRole('tab', { name: 'Access' }).click();
  await page.locator('#api-keys tbody tr').first().waitFor();
  assert.equal(await page.locator('#tenant-status').getAttribute('data-status'), 'active');
  assert.deepEqual(await page.locator('#api-keys tbody td:first-child').allInnerTexts(), ['Registration key']);

  // An empty label is refused at its field; a labelled key is shown once and listed.
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.locator('#key-form .field-error[data-error-for="label"]').waitFor();
  await page.getByLabel('Label', { exact: true }).fill('CRM integration');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.locator('#new-key').waitFor();
  const shown = await page.locator('#new-key-value').innerText();
  assert.match(shown, /^wak_[0-9a-f]{64}$/);
  await page.locator('#api-keys tbody tr', { hasText: 'CRM integration' }).waitFor();
  const row = page.locator('#api-keys tbody tr', { hasText: 'CRM integration' });
  assert.equal(await row.locator('code').innerText(), `${shown.slice(0, 12)}…`);
  assert.equal((await asTenant(shown)).status, 200);
  await page.screenshot({ path: `${SHOTS}admin-access.png`, fullPage: true });

  // Deleted: gone from the list and refused.
  page.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'Delete key CRM integration' }).click();
  await page.locator('#key-message', { hasText: 'deleted' }).waitFor();
  await page.locator('#api-keys tbody tr', { hasText: 'CRM integration' }).waitFor({ state: 'detached' });
  assert.equal((await asTenant(shown)).status, 401);
  assert.equal((await asTenant(apiKey)).status, 200);

  // Disabled: its key gets 403 tenant_disabled; active again: accepted.
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Disable tenant' }).click();
  await page.locator('#tenant-status[data-status="disabled"]').waitFor();
  const refused = await asTenant(apiKey);
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).code, 'tenant_disabled');
  await page.getByRole('button', { name: 'Activate tenant' }).click();
  await page.locator('#tenant-status[data-status="active"]').waitFor();
  assert.match(await page.locator('#key-message').innerText(), /Tenant active; 0 held messages released/);
  assert.equal((await asTenant(apiKey)).status, 200);
});

// ---- dead letters ------------------------------------------------------------------------

// SQS's JSON protocol against the local stack (moto does not check signatures).
async function sqs(action, body) {
  const r = await fetch(process.env.AWS_ENDPOINT_URL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${action}`, Authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

test('dead letters: a message whose job is in the DLQ is listed with its last error and retried once', async () => {
  assert.ok(process.env.SEND_DLQ_URL, 'the stack exports SEND_DLQ_URL');
  const tenant = await openNewTenant('Dead Letters Deli', `1888${String(Date.now()).slice(-8)}`);
  await inbound('34600777111');
  const sent = await fetch(`${BASE}/tenants/${tenant.id}/send`, {
    method: 'POST', headers: adminJson, body: JSON.stringify({ to: '34600777111', text: 'Your table is ready' }),
  });
  assert.equal(sent.status, 202, await sent.clone().text());
  const { messageId } = await sent.json();
  // As the queue's redrive policy leaves it after five failed receives.
  const job = { tenantId: tenant.id, messageId, to: '34600777111', content: { kind: 'text', text: 'Your table is ready' }, idempotencyKey: 'api:dead' };
  await sqs('SendMessage', { QueueUrl: process.env.SEND_DLQ_URL, MessageBody: JSON.stringify(job) });

  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const row = page.locator(`#dead-letters tbody tr[data-id="${messageId}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /34600777111/);
  assert.match(await row.innerText(), /Your table is ready/);
  await page.screenshot({ path: `${SHOTS}admin-dead-letters.png`, fullPage: true });

  await row.getByRole('button', { name: 'Retry the message to 34600777111' }).click();
  await page.locator('#dead-status', { hasText: '1 message sent back to the queue' }).waitFor();
  await page.locator('#dead-empty').waitFor();
  const left = await fetch(`${BASE}/tenants/${tenant.id}/dead-letters`, { headers: adminJson });
  assert.deepEqual((await left.json()).deadLetters, []);
});

// ---- several numbers -----------------------------------------------------------------------

test('numbers: a second number added (a bad id refused at its field), chosen as From on Test send, then removed', async () => {
  const first = `1999${String(Date.now()).slice(-8)}`;
  const second = `1998${String(Date.now()).slice(-8)}`;
  const tenant = await openNewTenant('Two Numbers Café', first);
  await page.getByRole('tab', { name: 'Access' }).click();
  await page.locator(`#numbers tbody tr[data-id="${first}"]`).waitFor();

  await page.getByLabel('Phone number ID').fill('12ab');
  await page.getByRole('button', { name: 'Add number' }).click();
  await page.locator('#number-form .field-error[data-error-for="phoneNumberId"]').waitFor();
  await page.getByLabel('Phone number ID').fill(second);
  await page.getByLabel('Display number').fill('+1 555 010 2000');
  await page.getByRole('button', { name: 'Add number' }).click();
  await page.locator(`#numbers tbody tr[data-id="${second}"]`).waitFor();
  assert.match(await page.locator(`#numbers tbody tr[data-id="${second}"]`).innerText(), /\+1 555 010 2000/);

  // Test send from the second number: the message records it.
  await inbound('34600555444');
  await page.getByRole('tab', { name: 'Templates', exact: true }).click();
  const key = await saveTemplate({ body: 'From the second number' });
  await page.getByRole('tab', { name: 'Test send' }).click();
  await page.getByLabel('To (E.164)').fill('+34600555444');
  await page.locator('#send-template').selectOption(key);
  await page.getByLabel('From', { exact: true }).selectOption(second);
  await page.locator('#send-form').getByRole('button', { name: 'Send' }).click();
  await page.locator('#send-result', { hasText: 'Queued' }).waitFor();
  const messageId = (await page.locator('#send-result').innerText()).replace('Queued ', '');
  const log = await fetch(`${BASE}/tenants/${tenant.id}/messages?direction=OUT`, { headers: adminJson });
  const sentFrom = (await log.json()).messages.find((m) => m.id === messageId);
  assert.equal(sentFrom.phoneNumberId, second);

  await page.getByRole('tab', { name: 'Access' }).click();
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: `Remove number ${first}` }).click();
  await page.locator(`#numbers tbody tr[data-id="${first}"]`).waitFor({ state: 'detached' });
  const after = await (await fetch(`${BASE}/tenants/${tenant.id}`, { headers: adminJson })).json();
  assert.equal(after.tenant.phoneNumberId, second);
  assert.equal(await page.getByRole('button', { name: `Remove number ${second}` }).count(), 0, 'the last number stays');
});

// ---- Embedded Signup -------------------------------------------------------------------------

test('Connect WhatsApp: a refused code at its field, then a tenant with every number of the shared account', async () => {
  await page.reload();
  await page.locator('#app').waitFor();
  await page.locator('#connect-box > summary').click();
  await page.getByLabel('Business name').fill('Stub Bakery');
  await page.getByLabel("Code from Meta's dialog").fill('not-a-real-code');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  const refused = page.locator('#connect-form .field-error[data-error-for="code"]');
  await refused.waitFor();
  assert.match(await refused.innerText(), /Meta refused the code/);

  // The local Graph stand-in plays the dialog's account for stub- codes: two numbers, the
  // second not yet on the Cloud API.
  await page.getByLabel("Code from Meta's dialog").fill(`stub-${randomBytes(6).toString('hex')}`);
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.locator('#connect-message', { hasText: 'Connected' }).waitFor();
  assert.match(await page.locator('#connect-message').innerText(), /Stub Bakery with 2 numbers \(1 registered on the Cloud API\)/);
  assert.match(await page.locator('#connect-key-value').innerText(), /^wak_[0-9a-f]{64}$/);
  await page.locator('#app[data-tenant]').waitFor();
  const id = await page.locator('#tenant').inputValue();
  const shown = await (await fetch(`${BASE}/tenants/${id}`, { headers: adminJson })).json();
  assert.equal(shown.tenant.name, 'Stub Bakery');
  assert.deepEqual(shown.tenant.numbers.map((n) => n.phoneNumberId), ['2000000011', '2000000012']);
  assert.equal(shown.tenant.wabaId, '2000000001');
  await page.getByRole('tab', { name: 'Access' }).click();
  await page.locator('#numbers tbody tr[data-id="2000000012"]').waitFor();
  await page.screenshot({ path: `${SHOTS}admin-connect.png`, fullPage: true });
});

// ---- analytics ---------------------------------------------------------------------------------

test('analytics: cards, a uPlot chart, the funnel, taps per option and rule hits of a scripted conversation', async () => {
  const tenant = await openNewTenant('Charted Coffee', `1555${String(Date.now()).slice(-8)}`);
  const post = (path, body) => fetch(`${BASE}/tenants/${tenant.id}${path}`, { method: 'POST', headers: adminJson, body: JSON.stringify(body) });
  assert.equal((await post('/templates', { key: 'prices', body: 'Coffee 3€' })).status, 201);
  assert.equal((await post('/templates', { key: 'menu', body: 'Menu', kind: 'interactive_button', buttons: [{ title: 'Prices', nextTemplateKey: 'prices' }] })).status, 201);
  const flow = await post('/flows', { flows: [{ id: 'greet', match: { type: 'equals', values: ['hi'] }, action: { type: 'send_template', templateKey: 'menu' } }] });
  assert.ok(flow.status < 300);
  const menu = await (await fetch(`${BASE}/tenants/${tenant.id}/templates/menu`, { headers: adminJson })).json();
  const button = menu.template.buttons[0];
  await inbound('34600444333', { body: 'hi' });
  await inbound('34600444333', { reply: { id: button.id, title: 'Prices' } });

  await page.getByRole('tab', { name: 'Analytics' }).click();
  await page.locator('#tab-analytics[data-loaded="4"]').waitFor();
  const cards = await page.locator('#analytics-summary').innerText();
  assert.match(cards, /2\s*inbound/);
  assert.match(cards, /2\s*outbound/);
  await page.locator('#analytics-chart .uplot canvas').waitFor();
  assert.deepEqual(await page.locator('#analytics-taps tbody td').allInnerTexts(), ['menu', 'Prices', '1']);
  assert.deepEqual(await page.locator('#analytics-rules tbody td').allInnerTexts(), ['greet', '1']);
  assert.match(await page.locator('#analytics-funnel tbody').innerText(), /Accepted\s+2/);
  await page.screenshot({ path: `${SHOTS}admin-analytics.png`, fullPage: true });

  // More than 7 days by hour is refused at the field.
  await page.getByLabel('From date').fill('2026-01-01');
  await page.getByLabel('By').selectOption('hour');
  await page.locator('#analytics-form').getByRole('button', { name: 'Show' }).click();
  await page.locator('#analytics-form .field-error[data-error-for="from"]').waitFor();
});

// ---- event subscriptions -----------------------------------------------------------------------

test('events: a subscription made in the console receives a signed message.received, listed in its deliveries', async () => {
  const { createServer } = await import('node:http');
  const received = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks), signature: req.headers['x-signature-256'] });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const hook = `http://127.0.0.1:${server.address().port}/hook`;
  try {
    await openNewTenant('Event Emporium', `1444${String(Date.now()).slice(-8)}`);
    await page.getByRole('tab', { name: 'Access' }).click();
    await page.getByLabel('Receiver URL').fill('ftp://nowhere');
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.locator('#sub-form .field-error[data-error-for="url"]').waitFor();
    await page.getByLabel('Receiver URL').fill(hook);
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.locator('#new-secret').waitFor();
    const secret = await page.locator('#new-secret-value').innerText();
    assert.match(secret, /^whsec_[0-9a-f]{64}$/);
    await page.locator('#subscriptions tbody tr', { hasText: hook }).waitFor();

    await inbound('34600222111', { body: 'ping' });
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 1, 'the event reached the receiver');
    const event = JSON.parse(received[0].body.toString());
    assert.equal(event.type, 'message.received');
    assert.equal(event.data.text, 'ping');
    assert.equal(received[0].signature, `sha256=${createHmac('sha256', secret).update(received[0].body).digest('hex')}`);

    await page.getByRole('button', { name: `Deliveries to ${hook}` }).click();
    await page.locator('#deliveries-box[data-count="1"]').waitFor();
    assert.match(await page.locator('#deliveries tbody').innerText(), /message\.received\s+1\s+200/);
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: `Delete the subscription to ${hook}` }).click();
    await page.locator('#subscriptions tbody tr', { hasText: hook }).waitFor({ state: 'detached' });
  } finally {
    server.close();
  }
});
