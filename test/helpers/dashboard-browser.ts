import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { cleanEnv, type ServeProcess, startServeProcess } from './serve-process.js';

// What the dashboard's browser tests share: `vppd serve --demo` as a real process (with the Apple
// simulator in it) and Debian's chromium driven by playwright-core.

/** Where the browser tests' screenshots land (look at them when the page changes). */
export const dashboardShots = join(process.cwd(), 'test-artifacts', 'dashboard');

const chromiumPath = process.env.VPPD_CHROMIUM ?? '/usr/bin/chromium';

export interface DemoInBrowser {
  readonly server: ServeProcess;
  /** The simulator's admin API (`…/_sim`: faults, data). */
  readonly simAdmin: string;
  readonly browser: Browser;
  /** Closes the browser, kills the process and deletes its working folder. */
  close(): Promise<void>;
}

/**
 * Starts `vppd serve --demo` in a new working folder (port 0, silent logs, a 1 s shutdown grace, plus
 * `env`) and launches chromium.
 */
export async function startDemoInBrowser(
  folderPrefix: string,
  env: Record<string, string> = {},
): Promise<DemoInBrowser> {
  mkdirSync(dashboardShots, { recursive: true });
  const cwd = mkdtempSync(join(tmpdir(), folderPrefix));
  let server: ServeProcess | undefined;
  try {
    server = await startServeProcess(['--demo'], {
      env: cleanEnv({ VPPD_PORT: '0', VPPD_LOG_LEVEL: 'silent', VPPD_SHUTDOWN_GRACE: '1s', ...env }),
      cwd,
    });
    const stdout = server.stdout();
    const sim = /^demo: Apple simulator (http:\/\/\S+)\/mdm\/v2$/m.exec(stdout)?.[1];
    if (sim === undefined) throw new Error(`no simulator line in: ${stdout}`);
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
    const running = server;
    return {
      server: running,
      simAdmin: `${sim}/_sim`,
      browser,
      async close() {
        await browser.close();
        await running.stop('SIGKILL');
        rmSync(cwd, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server?.stop('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
    throw error;
  }
}
