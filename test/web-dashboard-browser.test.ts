import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoTokens } from '../src/demo/demo-scenario.js';
import { vppTokenSyncStatus } from '../src/domain/enums.js';
import { type DemoInBrowser, dashboardShots, startDemoInBrowser } from './helpers/dashboard-browser.js';
import { createTestApp } from './helpers/graph-test-app.js';
import type { ServeProcess } from './helpers/serve-process.js';
import { buildSToken } from './helpers/stoken-builder.js';

// The dashboard in a real browser (Debian's chromium driven by playwright-core) against `vppd serve
// --demo` as a real process: the page opens signed in, shows every status, changes a badge live when a
// sync runs, shows the server's error for a broken upload, speaks Russian, and works from the keyboard.
// Screenshots land in test-artifacts/dashboard/ (look at them when the page changes).

const shots = dashboardShots;
let demo: DemoInBrowser;
let server: ServeProcess;
let simAdmin: string;
let browser: Browser;

const healthy = demoTokens.find((d) => d.locationId === 'small')?.displayName ?? '';

beforeAll(async () => {
  demo = await startDemoInBrowser('vppd-dashboard-');
  ({ server, simAdmin, browser } = demo);
}, 60_000);

afterAll(async () => {
  await demo?.close();
});

async function openPage(options: { locale?: string; width?: number; height?: number } = {}): Promise<Page> {
  const context = await browser.newContext({
    locale: options.locale ?? 'en-US',
    viewport: { width: options.width ?? 1400, height: options.height ?? 900 },
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  (page as Page & { errors?: string[] }).errors = errors;
  await page.goto(`${server.url}/`);
  await page.locator('#rows tr').first().waitFor();
  return page;
}

const rowOf = (page: Page, name: string) => page.locator('#rows tr', { hasText: name });

describe('the dashboard in chromium', () => {
  it('opens the demo signed in and shows every lastSyncStatus at once', async () => {
    const page = await openPage();
    await expect(page.locator('#who').textContent()).resolves.toBe('Demo tenant');
    // Signed in by the demo: nothing to sign out of.
    expect(await page.locator('#sign-out').isVisible()).toBe(false);
    await page.locator('#live[data-state="live"]').waitFor();
    // Every status at the same moment (the large token stays inProgress ~30 s after start). One
    // evaluateAll reads every badge in a single pass, so the statuses seen are one moment's. Polled from
    // the test, not as a page-side expression: polling a string expression in the page can need `eval`,
    // which the dashboard's CSP (script-src 'self') refuses.
    await expect
      .poll(
        () =>
          page
            .locator('#rows .status-badge')
            .evaluateAll((els) => [...new Set(els.map((el) => el.getAttribute('data-value')))].sort()),
        { timeout: 45_000 },
      )
      .toEqual([...vppTokenSyncStatus.names].sort());
    expect(await page.locator('#rows tr').count()).toBe(demoTokens.length);
    // A failed token says why, in words.
    const expired = rowOf(page, 'Ogdenville Library');
    await expect(expired.locator('td[data-col="failure"]').textContent()).resolves.toContain(
      'The token has expired',
    );
    await expect(expired.locator('.expiry').getAttribute('data-level')).resolves.toBe('expired');
    await page.screenshot({ path: join(shots, 'every-status.png'), fullPage: true });
    expect((page as Page & { errors?: string[] }).errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('Sync now on a completed token: the badge goes inProgress, then completed, without a reload', async () => {
    const page = await openPage();
    const row = rowOf(page, healthy);
    await row.locator('.status-badge[data-value="completed"]').waitFor({ timeout: 30_000 });
    // Apple answers this location slowly for a while, so the inProgress phase is long enough to see.
    const slow = await fetch(`${simAdmin}/locations/small/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'latency', ms: 600 }),
    });
    expect(slow.status).toBe(200);
    try {
      await page.evaluate('window.notReloaded = true');
      const button = row.getByRole('button', { name: `Sync now: ${healthy}` });
      expect(await button.isDisabled()).toBe(false);
      await button.click();
      await row.locator('.status-badge[data-value="inProgress"]').waitFor({ timeout: 10_000 });
      expect(await button.isDisabled()).toBe(true);
      await page.screenshot({ path: join(shots, 'sync-in-progress.png') });
      await row.locator('.status-badge[data-value="completed"]').waitFor({ timeout: 30_000 });
      expect(await button.isDisabled()).toBe(false);
      const kept = await page.evaluate('window.notReloaded');
      expect(kept).toBe(true);
      await page.screenshot({ path: join(shots, 'sync-completed.png') });
    } finally {
      await fetch(`${simAdmin}/locations/small/faults`, { method: 'DELETE' });
      await page.context().close();
    }
  }, 60_000);

  it('shows the server’s clear message when the uploaded file is not a .vpptoken, and adds nothing', async () => {
    const page = await openPage();
    const broken = Buffer.from('this is not a VPP token');
    // What the API says for this body is what the page must show.
    const session = (await (await fetch(`${server.url}/dashboard/session`)).json()) as {
      accessToken: string;
    };
    const direct = await fetch(`${server.url}/beta/deviceAppManagement/vppTokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: broken.toString('utf8') }),
    });
    expect(direct.status).toBe(400);
    const message = ((await direct.json()) as { error: { message: string } }).error.message;
    await page.setInputFiles('#upload-file', {
      name: 'broken.vpptoken',
      mimeType: 'text/plain',
      buffer: broken,
    });
    const alert = page.getByRole('alert').filter({ hasText: message });
    await alert.waitFor();
    await expect(alert.textContent()).resolves.toContain(message);
    expect(await page.locator('#rows tr').count()).toBe(demoTokens.length);
    await page.screenshot({ path: join(shots, 'upload-error.png') });
    await page.context().close();
  }, 60_000);

  it('uploads a .vpptoken, renames, renews and deletes it (after a confirmation) from the page', async () => {
    const page = await openPage();
    const upload = buildSToken({
      orgName: 'Dashboard Upload School',
      expDate: new Date('2030-01-31T00:00:00Z'),
    });
    await page.setInputFiles('#upload-file', {
      name: 'school.vpptoken',
      mimeType: 'text/plain',
      buffer: Buffer.from(upload),
    });
    await page.locator('#notice', { hasText: 'Token uploaded' }).waitFor();
    const row = rowOf(page, 'Dashboard Upload School');
    await row.waitFor();
    expect(await page.locator('#rows tr').count()).toBe(demoTokens.length + 1);

    await row.locator('.name-button').click();
    await page.locator('dialog#detail[open]').waitFor();
    await page.locator('#apps', { hasText: 'No apps in the last snapshot.' }).waitFor();
    expect(await page.locator('#more-apps').isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Rename' }).click();
    const input = page.getByLabel('Display name');
    await input.fill('Renamed from the dashboard');
    await input.press('Enter');
    await page.locator('#detail-title', { hasText: 'Renamed from the dashboard' }).waitFor();
    await rowOf(page, 'Renamed from the dashboard').waitFor();

    // Renewal: a new file for the same token; the expiry follows the new file.
    await page.setInputFiles('#renew-file', {
      name: 'renewed.vpptoken',
      mimeType: 'text/plain',
      buffer: Buffer.from(
        buildSToken({ orgName: 'Dashboard Upload School', expDate: new Date('2031-06-30T00:00:00Z') }),
      ),
    });
    await page.locator('#notice', { hasText: 'Token renewed' }).waitFor();
    await page.locator('#detail-facts', { hasText: '2031' }).waitFor();
    await page.screenshot({ path: join(shots, 'renamed-renewed.png') });

    // Delete asks first: Cancel keeps the token, Delete removes it.
    await page.locator('#detail-delete').click();
    const confirm = page.locator('dialog#delete-dialog[open]');
    await confirm.waitFor();
    await expect(page.locator('#delete-text').textContent()).resolves.toContain('Renamed from the dashboard');
    await page.screenshot({ path: join(shots, 'delete-confirmation.png') });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    expect(await page.locator('#rows tr').count()).toBe(demoTokens.length + 1);
    await page.locator('#detail-delete').click();
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await page.locator('#notice', { hasText: 'Token deleted' }).waitFor();
    await rowOf(page, 'Renamed from the dashboard').waitFor({ state: 'detached' });
    expect(await page.locator('#rows tr').count()).toBe(demoTokens.length);
    await page.context().close();
  }, 60_000);

  it('speaks Russian: chosen from the browser’s language, and with the switch', async () => {
    const russian = await openPage({ locale: 'ru-RU' });
    await expect(russian.locator('html').getAttribute('lang')).resolves.toBe('ru');
    await expect(russian.locator('h1').textContent()).resolves.toContain('Токены VPP');
    const completed = rowOf(russian, healthy).locator('.status-badge');
    await expect(completed.textContent()).resolves.toBe('Завершена');
    await expect(completed.getAttribute('title')).resolves.toBe('Последняя синхронизация успешно завершена.');
    await expect(
      rowOf(russian, healthy)
        .getByRole('button', { name: `Синхронизировать: ${healthy}` })
        .count(),
    ).resolves.toBe(1);
    await russian.screenshot({ path: join(shots, 'russian.png'), fullPage: true });
    await russian.context().close();

    const page = await openPage();
    await expect(page.locator('h1').textContent()).resolves.toContain('VPP tokens');
    await page.getByLabel('Language').selectOption('ru');
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('ru');
    await expect(page.locator('#tokens th[data-key="status"]').textContent()).resolves.toBe(
      'Последняя синхронизация',
    );
    await page.getByLabel('Язык').selectOption('en');
    await expect(page.locator('#tokens th[data-key="status"]').textContent()).resolves.toBe('Last sync');
    await page.context().close();
  }, 60_000);

  it('works from the keyboard alone: reach the table, move between rows, sort, open and close details', async () => {
    const page = await openPage();
    const focusedName = () =>
      page.evaluate<string | null>(
        "document.activeElement?.classList.contains('name-button') ? document.activeElement.textContent : null",
      );
    // Tab from the top of the page until a row's name has the focus.
    let reached = false;
    for (let i = 0; i < 30 && !reached; i += 1) {
      await page.keyboard.press('Tab');
      reached = (await focusedName()) !== null;
    }
    expect(reached).toBe(true);
    const names = await page.locator('#rows .name-button').allTextContents();
    expect(await focusedName()).toBe(names[0]);
    await page.keyboard.press('ArrowDown');
    expect(await focusedName()).toBe(names[1]);
    await page.keyboard.press('End');
    expect(await focusedName()).toBe(names.at(-1));
    await page.keyboard.press('ArrowUp');
    expect(await focusedName()).toBe(names.at(-2));
    await page.keyboard.press('Home');
    expect(await focusedName()).toBe(names[0]);
    await page.screenshot({ path: join(shots, 'keyboard-focus.png') });

    // Enter opens the details as a modal dialog; Escape closes it and gives the focus back to the row.
    await page.keyboard.press('Enter');
    const dialog = page.locator('dialog#detail[open]');
    await dialog.waitFor();
    await expect(page.locator('#detail-title').textContent()).resolves.toBe(names[0]);
    await page.locator('#history tr').first().waitFor();
    // The token's license operations (none in the demo) load beside the history, without an error.
    await page.locator('#operations tr').first().waitFor();
    await expect(page.locator('#operations').textContent()).resolves.toBe('No license operation yet.');
    await expect(page.locator('#detail-alert').isHidden()).resolves.toBe(true);
    // The history as a chart too: one bar per finished run, its outcome as its class, described in words.
    await page.locator('#history-chart svg rect').first().waitFor();
    const finished = await page
      .locator('#history tr')
      .evaluateAll((trs) => trs.filter((tr) => tr.children[1]?.textContent !== '…').length);
    expect(await page.locator('#history-chart svg rect').count()).toBe(finished);
    await expect(page.locator('#history-chart svg').getAttribute('aria-label')).resolves.toMatch(
      /^Durations of the last \d+ syncs/,
    );
    await page.locator('#history-chart').screenshot({ path: join(shots, 'history-chart.png') });
    await page.screenshot({ path: join(shots, 'details.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await focusedName()).toBe(names[0]);

    // Sorting is a button in each column header: Shift+Tab back to it, Enter sorts descending.
    const sortButton = page.locator('th[data-key="name"] button');
    await sortButton.focus();
    await page.keyboard.press('Enter');
    await expect(page.locator('th[data-key="name"]').getAttribute('aria-sort')).resolves.toBe('descending');
    const reversed = await page.locator('#rows .name-button').allTextContents();
    expect(reversed).toEqual([...names].reverse());
    await page.context().close();
  }, 60_000);

  it('names every control and keeps text contrast at WCAG AA (4.5:1) in the table and header', async () => {
    const page = await openPage();
    await page.locator('#rows .status-badge[data-value="failed"]').first().waitFor();
    // Every form control has a label; every button says what it does.
    const unnamed = await page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.labels === null || el.labels.length === 0)
      .map((el) => el.id)
      .concat([...document.querySelectorAll('button')]
        .filter((b) => (b.getAttribute('aria-label') ?? b.textContent ?? '').trim() === '')
        .map((b) => b.outerHTML.slice(0, 60)))`);
    expect(unnamed).toEqual([]);
    // Contrast of every piece of visible text against the background it is drawn on.
    const worst = await page.evaluate<{ ratio: number; text: string }>(`(() => {
      const rgb = (c) => (c.match(/[\\d.]+/g) ?? []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      let worst = { ratio: 99, text: '' };
      const texts = document.querySelectorAll('header *, #tokens th, #tokens td *, #tokens td, #tokens label span');
      for (const el of texts) {
        const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
        if (!own || el.closest('[hidden]') || (el instanceof HTMLButtonElement && el.disabled)) continue;
        const a = lum(rgb(getComputedStyle(el).color).slice(0, 3));
        const b = lum(background(el));
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < worst.ratio) worst = { ratio, text: el.textContent.trim().slice(0, 40) };
      }
      return worst;
    })()`);
    expect(worst.text, 'some text was measured').not.toBe('');
    expect(worst.ratio, `lowest contrast: "${worst.text}"`).toBeGreaterThanOrEqual(4.5);
    await page.context().close();
  }, 60_000);

  it('filters by status and state, and fits a phone’s screen', async () => {
    const page = await openPage({ width: 390, height: 844 });
    await page.getByLabel('Sync status').selectOption('failed');
    const statuses = await page
      .locator('#rows .status-badge')
      .evaluateAll((els) => els.map((el) => el.getAttribute('data-value')));
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set(['failed']));
    await page.getByLabel('Token state').selectOption('expired');
    expect(await page.locator('#rows tr').count()).toBe(1);
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(shots, 'phone.png'), fullPage: true });
    await page.context().close();
  }, 60_000);

  it('shows counts by sync status and state above the table; a count filters the table', async () => {
    const page = await openPage();
    const failedChip = page.locator('#overview-status .chip[data-value="failed"]');
    // Polled through the locator (a page-side string expression can need `eval`, which the CSP refuses).
    await expect
      .poll(() => page.locator('#rows .status-badge[data-value="failed"]').count(), { timeout: 45_000 })
      .toBeGreaterThan(0);
    const failedRows = await page.locator('#rows .status-badge[data-value="failed"]').count();
    await expect(failedChip.textContent()).resolves.toMatch(new RegExp(` ${failedRows}$`));
    await failedChip.click();
    await expect(failedChip.getAttribute('aria-pressed')).resolves.toBe('true');
    expect(await page.locator('#rows tr').count()).toBe(failedRows);
    await expect(page.getByLabel('Sync status').inputValue()).resolves.toBe('failed');
    await page.locator('#overview-state .chip[data-value="expired"]').click();
    expect(await page.locator('#rows tr').count()).toBe(1);
    await expect(page.locator('#overview-expiring').textContent()).resolves.toMatch(
      /^Tokens expiring within 30 days: \d+$/,
    );
    // License utilization: a bar per token with a snapshot, described in words, and the most used apps.
    await page.locator('#utilization:not([hidden]) .utilization-row').first().waitFor();
    await expect(
      page.locator('#utilization .utilization-row svg').first().getAttribute('aria-label'),
    ).resolves.toMatch(/^[\d,]+ of [\d,]+ assigned$/);
    expect(await page.locator('#utilization-apps li').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, 'overview-filtered.png') });
    await failedChip.click();
    await expect(page.getByLabel('Sync status').inputValue()).resolves.toBe('');
    await page.locator('#lang').selectOption('ru');
    await expect(page.locator('#overview-status-title').textContent()).resolves.toBe('По синхронизации');
    await expect(page.locator('#overview-expiring').textContent()).resolves.toMatch(/^Токенов, истекающих/);
    // Polled through the locator, not a page-side expression: polling a string expression in the page
    // can need `eval`, which the dashboard's CSP (script-src 'self') refuses.
    await expect
      .poll(() => page.locator('#utilization .utilization-value').first().textContent(), { timeout: 30_000 })
      .toMatch(/^назначено/);
    await page.screenshot({ path: join(shots, 'overview-russian.png') });
    // The sync history chart in Russian (the expired token, still shown: its failed runs are red bars).
    await rowOf(page, 'Ogdenville Library').locator('.name-button').click();
    await page.locator('#history-chart svg rect').first().waitFor();
    await expect(page.locator('#history-chart svg').getAttribute('aria-label')).resolves.toMatch(
      /^Длительность последних синхронизаций/,
    );
    await page.locator('#history-chart').screenshot({ path: join(shots, 'history-chart-russian.png') });
    expect((page as Page & { errors?: string[] }).errors).toEqual([]);
    await page.context().close();
  }, 60_000);
});

describe('signing in outside demo mode', () => {
  it('asks for a bearer token, refuses a bad one with a clear message, and signs out', async () => {
    const app = await createTestApp();
    try {
      await app.app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.app.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
      const context = await browser.newContext({ locale: 'en-US' });
      const page = await context.newPage();
      await page.goto(url);
      const field = page.getByLabel('Bearer token');
      await field.waitFor();
      expect(await page.locator('#tokens').isVisible()).toBe(false);
      await field.fill('not-a-jwt');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'The server did not accept this token.' }).waitFor();
      await page.screenshot({ path: join(shots, 'sign-in-refused.png') });

      await field.fill(app.auth.a);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#empty', { hasText: 'No tokens yet' }).waitFor();
      await page.locator('#live[data-state="live"]').waitFor();
      expect(await page.locator('#sign-out').isVisible()).toBe(true);
      // The token stays in this tab only: a reload keeps the session.
      await page.reload();
      await page.locator('#empty', { hasText: 'No tokens yet' }).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await field.waitFor();
      expect(await page.evaluate<string | null>("sessionStorage.getItem('vppd.dashboard.token')")).toBeNull();
      await context.close();
    } finally {
      await app.close();
    }
  }, 60_000);
});
