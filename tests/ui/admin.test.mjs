// The Template Builder in headless Debian Chromium, against the local gateway started by
// infra/with-gateway.sh (BASE_URL, ADMIN_TOKEN, TENANT_ID).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const ADMIN = process.env.ADMIN_TOKEN;
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
  await page.getByLabel('Message').fill(body);
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

let keys = {};

test('builds a three-level menu and shows the generated keys', async () => {
  keys.prices = await saveTemplate({ body: 'Latte 3.20, cappuccino 3.00' });
  keys.hours = await saveTemplate({ body: 'Open 8-18, {{customer_name}}' });
  keys.more = await saveTemplate({ body: 'More options', buttons: [{ title: 'Opening hours', next: keys.hours }] });
  await page.getByRole('button', { name: 'New template' }).click();
  await page.getByLabel('Kind').selectOption('interactive_button');
  await page.getByLabel('Message').fill('Hi {{customer_name}}! Pick one');
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
  await page.getByLabel('Message').fill('Too long');
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
  await page.getByRole('tab', { name: 'Templates' }).click();
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
  await page.getByRole('tab', { name: 'Test send' }).click();
  await page.getByLabel('To (E.164)').fill('+34600111222');
  await page.locator('#send-template').selectOption(keys.hours);
  await page.locator('#var-customer_name').fill('Ana');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#send-result', { hasText: 'Queued' }).waitFor();
  await page.locator('#log tbody tr[data-status="sent"]', { hasText: 'Open 8-18, Ana' }).waitFor({ timeout: 15000 });
});

test('usable at phone width and by keyboard', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('tab', { name: 'Templates' }).click();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('[hidden]') && !e.closest('table, .map-wrap'))
    .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`));
  assert.ok(overflow <= 1, `no horizontal scrolling (${overflow}px): ${wide.join(', ')}`);
  await page.getByRole('tab', { name: 'Templates' }).focus();
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
