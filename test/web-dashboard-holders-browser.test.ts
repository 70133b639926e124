import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoTenantId } from '../src/config.js';
import { demoTokens } from '../src/demo/demo-scenario.js';
import { issueAccessToken } from '../src/http/auth/issue-access-token.js';
import { readPermissions } from '../src/http/auth/permissions.js';
import { type DemoInBrowser, dashboardShots, startDemoInBrowser } from './helpers/dashboard-browser.js';
import type { ServeProcess } from './helpers/serve-process.js';

// An app's license holders in a token's details, in a real browser against `vppd serve --demo` (a real
// process with the Apple simulator): paged with the API's own paging, released one at a time after a
// confirmation (Cancel releases nothing), the operation followed until it ends and the counts refreshed;
// in Russian too; and a read-only session sees the holders without any release button.
// Screenshots land in test-artifacts/dashboard/.

const shots = dashboardShots;
const jwtSecret = randomBytes(48).toString('base64url');
const pageSize = 20;
let demo: DemoInBrowser;
let server: ServeProcess;
let simAdmin: string;
let browser: Browser;

const healthy = demoTokens.find((d) => d.locationId === 'small')?.displayName ?? '';

beforeAll(async () => {
  demo = await startDemoInBrowser('vppd-holders-', { VPPD_JWT_SECRET: jwtSecret });
  ({ server, simAdmin, browser } = demo);
}, 60_000);

afterAll(async () => {
  await demo?.close();
});

type TrackedPage = Page & { errors: string[]; posts: { url: string; key: string | undefined }[] };

/** Opens the dashboard; with `bearer`, signed in with that token instead of the demo's session. */
async function openPage(options: { locale?: string; bearer?: string } = {}): Promise<TrackedPage> {
  const context = await browser.newContext({
    locale: options.locale ?? 'en-US',
    viewport: { width: 1400, height: 1000 },
  });
  const page = (await context.newPage()) as TrackedPage;
  page.errors = [];
  page.posts = [];
  page.on('pageerror', (error) => page.errors.push(error.message));
  page.on('request', (request) => {
    if (request.method() === 'POST') {
      page.posts.push({ url: request.url(), key: request.headers()['idempotency-key'] });
    }
  });
  const bearer = options.bearer;
  if (bearer !== undefined) {
    // What /dashboard/session answers to a client that is not on loopback: no demo session, so the page
    // signs in with the token kept in the tab (as after pasting it).
    await page.route('**/dashboard/session', (route) => route.fulfill({ json: { demo: false } }));
    await page.addInitScript(`sessionStorage.setItem('vppd.dashboard.token', ${JSON.stringify(bearer)})`);
  }
  await page.goto(`${server.url}/`);
  await page.locator('#rows tr').first().waitFor();
  return page;
}

/** Opens the healthy token's details once its first sync completed; returns its busiest app's row. */
async function openBusiestApp(page: Page) {
  const row = page.locator('#rows tr', { hasText: healthy });
  await row.locator('.status-badge[data-value="completed"]').waitFor({ timeout: 30_000 });
  await row.locator('.name-button').click();
  await page.locator('dialog#detail[open]').waitFor();
  await page.locator('#apps .holders-button').first().waitFor();
  const used = await page
    .locator('#apps > tr:not(.holders-panel)')
    .evaluateAll((trs) => trs.map((tr) => Number((tr.children[3]?.textContent ?? '').replace(/\D/g, ''))));
  const most = Math.max(...used);
  const index = used.indexOf(most);
  const app = page.locator('#apps > tr:not(.holders-panel)').nth(index);
  const name = (await app.locator('td').first().textContent()) ?? '';
  return { app, name, used: most };
}

const usedOf = async (page: Page, name: string) =>
  Number(
    ((await page.locator('#apps > tr', { hasText: name }).locator('td').nth(3).textContent()) ?? '').replace(
      /\D/g,
      '',
    ),
  );

describe('license holders in the dashboard', () => {
  it('pages through an app’s holders, cancels a release, then releases one and sees the count drop', async () => {
    const page = await openPage();
    const { app, name, used } = await openBusiestApp(page);
    // The demo's busiest app has more holders than one page.
    expect(used).toBeGreaterThan(pageSize);

    // From the keyboard: the app's Holders button opens its holders under the row.
    const toggle = app.getByRole('button', { name: `Holders: ${name}` });
    await toggle.focus();
    await page.keyboard.press('Enter');
    await expect(toggle.getAttribute('aria-expanded')).resolves.toBe('true');
    const panel = page.locator('#apps .holders-panel');
    await panel.locator('.holders-count', { hasText: `${used} licenses assigned` }).waitFor();
    const holders = panel.locator('li');
    expect(await holders.count()).toBe(pageSize);
    const more = panel.getByRole('button', { name: 'Show more holders' });
    await more.focus();
    await page.keyboard.press('Enter');
    const twoPages = Math.min(used, 2 * pageSize);
    await holders.nth(twoPages - 1).waitFor();
    expect(await holders.count()).toBe(twoPages);
    const listed = await panel.locator('.holder-id').allTextContents();
    expect(new Set(listed).size).toBe(listed.length);
    // The focus moved to the first holder of the new page; Enter asks, Escape cancels: nothing is released.
    await expect(page.evaluate("document.activeElement?.getAttribute('aria-label')")).resolves.toBe(
      `Release: ${listed[pageSize]}`,
    );
    await page.keyboard.press('Enter');
    await page.locator('dialog#release-dialog[open]').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('dialog#release-dialog').waitFor({ state: 'hidden' });
    await page.locator('#detail').screenshot({ path: join(shots, 'holders.png') });

    // Cancel in the confirmation: nothing is posted, nothing changes.
    const first = listed[0] ?? '';
    expect(first).toMatch(/^(device|user) /);
    const release = panel.getByRole('button', { name: `Release: ${first}` });
    await release.click();
    const confirm = page.locator('dialog#release-dialog[open]');
    await confirm.waitFor();
    const question = (await page.locator('#release-text').textContent()) ?? '';
    expect(question).toContain(first);
    expect(question).toContain(name);
    await confirm.screenshot({ path: join(shots, 'release-confirmation.png') });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    expect(page.posts).toEqual([]);
    await expect(page.locator('#operations').textContent()).resolves.toBe('No license operation yet.');
    expect(await usedOf(page, name)).toBe(used);

    // Release, confirmed: one POST with an Idempotency-Key, the operation followed to its end.
    await release.click();
    await confirm.waitFor();
    await confirm.getByRole('button', { name: 'Release' }).click();
    await page
      .locator('#notice', { hasText: `Released: ${first} (completed).` })
      .waitFor({ timeout: 30_000 });
    expect(page.posts).toHaveLength(1);
    expect(page.posts[0]?.url).toMatch(/\/vppd\/v1\/tokens\/[^/]+\/disassociations$/);
    expect(page.posts[0]?.key).toMatch(/^dashboard-[0-9a-f]{32}$/);
    // The counts and the holders are read again: one fewer, and the released holder is gone.
    await page
      .locator('#apps .holders-panel .holders-count', { hasText: `${used - 1} licenses assigned` })
      .waitFor();
    expect(await usedOf(page, name)).toBe(used - 1);
    await page.locator('#apps .holders-panel li').first().waitFor();
    expect(await page.locator('#apps .holders-panel .holder-id').allTextContents()).not.toContain(first);
    const op = page.locator('#operations tr').first();
    await op.filter({ hasText: 'completed' }).waitFor();
    await expect(op.textContent()).resolves.toContain('release');
    await expect(op.locator('td').nth(3).textContent()).resolves.toBe('1 / 1 / 0');
    await expect(page.locator('#detail-alert').isHidden()).resolves.toBe(true);
    await page.locator('#detail').screenshot({ path: join(shots, 'holders-released.png') });

    // What the page showed is what the API says.
    const session = (await (await fetch(`${server.url}/dashboard/session`)).json()) as {
      accessToken: string;
    };
    const tokenId = await page.evaluate<string>(
      `[...document.querySelectorAll('#detail-facts dd')].at(-1).textContent`,
    );
    const appId = await app.locator('.holders-button').getAttribute('data-app-id');
    const direct = await fetch(
      `${server.url}/vppd/v1/tokens/${encodeURIComponent(tokenId)}/licenses?appId=${appId}&top=1000`,
      { headers: { authorization: `Bearer ${session.accessToken}` } },
    );
    expect(direct.status).toBe(200);
    const body = (await direct.json()) as { count: number; value: Record<string, string>[] };
    expect(body.count).toBe(used - 1);
    const ids = body.value.map(
      (h) => `${h.serialNumber ? 'device' : 'user'} ${h.serialNumber ?? h.clientUserId}`,
    );
    expect(ids).not.toContain(first);
    expect(page.errors).toEqual([]);
    await page.context().close();
  }, 90_000);

  it('shows Apple’s message when a release fails, and the count stays', async () => {
    const page = await openPage();
    const { app, name, used } = await openBusiestApp(page);
    await app.getByRole('button', { name: `Holders: ${name}` }).click();
    const panel = page.locator('#apps .holders-panel');
    await panel.locator('.holders-count', { hasText: `${used} licenses assigned` }).waitFor();
    const first = (await panel.locator('.holder-id').first().textContent()) ?? '';
    const [kind, holder] = first.split(' ');
    // Apple refuses this one holder in the next event.
    const fault = await fetch(`${simAdmin}/locations/small/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'eventFailure',
        count: 1,
        errorNumber: 9610,
        errorMessage: 'License not found for this holder',
        [kind === 'device' ? 'serialNumbers' : 'clientUserIds']: [holder],
      }),
    });
    expect(fault.status).toBe(200);
    try {
      await panel.getByRole('button', { name: `Release: ${first}` }).click();
      await page.locator('dialog#release-dialog[open]').getByRole('button', { name: 'Release' }).click();
      const alert = page.locator('#detail-alert', { hasText: 'License not found for this holder' });
      await alert.waitFor({ timeout: 30_000 });
      await expect(alert.textContent()).resolves.toBe(
        `The release of ${first} did not complete (failed): License not found for this holder`,
      );
      await page.locator('#operations tr').first().filter({ hasText: 'failed' }).waitFor();
      await expect(page.locator('#operations tr').first().textContent()).resolves.toContain('9610 ×1');
      await panel.locator('.holders-count', { hasText: `${used} licenses assigned` }).waitFor();
      expect(await usedOf(page, name)).toBe(used);
      await alert.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(shots, 'release-failed.png') });
      expect(page.errors).toEqual([]);
    } finally {
      await fetch(`${simAdmin}/locations/small/faults`, { method: 'DELETE' });
      await page.context().close();
    }
  }, 60_000);

  it('speaks Russian in the holders and the confirmation', async () => {
    const page = await openPage({ locale: 'ru-RU' });
    const { app, name, used } = await openBusiestApp(page);
    await app.getByRole('button', { name: `Держатели: ${name}` }).click();
    const panel = page.locator('#apps .holders-panel');
    await panel.locator('.holders-count', { hasText: `Назначено лицензий: ${used}` }).waitFor();
    await panel.getByRole('button', { name: 'Показать ещё' }).waitFor();
    const first = (await panel.locator('.holder-id').first().textContent()) ?? '';
    expect(first).toMatch(/^(устройство|пользователь) /);
    await page.locator('#detail').screenshot({ path: join(shots, 'holders-russian.png') });
    await panel.getByRole('button', { name: `Освободить: ${first}` }).click();
    const confirm = page.locator('dialog#release-dialog[open]');
    await confirm.waitFor();
    await expect(page.locator('#release-text').textContent()).resolves.toContain(
      `Освободить лицензию «${name}»`,
    );
    await confirm.screenshot({ path: join(shots, 'release-confirmation-russian.png') });
    await confirm.getByRole('button', { name: 'Отмена' }).click();
    await confirm.waitFor({ state: 'detached' });
    expect(page.posts).toEqual([]);
    expect(page.errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('a read-only session sees the holders but no release button', async () => {
    const readOnly = await issueAccessToken({
      secret: new TextEncoder().encode(jwtSecret),
      tenantId: demoTenantId,
      roles: [readPermissions[0]],
    });
    const page = await openPage({ bearer: readOnly });
    const { app, name, used } = await openBusiestApp(page);
    await app.getByRole('button', { name: `Holders: ${name}` }).click();
    const panel = page.locator('#apps .holders-panel');
    await panel.locator('.holders-count', { hasText: `${used} licenses assigned` }).waitFor();
    expect(await panel.locator('li').count()).toBe(pageSize);
    expect(await panel.locator('.release-button').count()).toBe(0);
    // The server agrees: this token may not release.
    const tokenId = await page.evaluate<string>(
      `[...document.querySelectorAll('#detail-facts dd')].at(-1).textContent`,
    );
    const refused = await fetch(
      `${server.url}/vppd/v1/tokens/${encodeURIComponent(tokenId)}/disassociations`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${readOnly}`, 'content-type': 'application/json' },
        body: JSON.stringify({ assets: [{ adamId: '1' }], serialNumbers: ['X'] }),
      },
    );
    expect(refused.status).toBe(403);
    expect(page.errors).toEqual([]);
    await page.context().close();
  }, 60_000);
});
