import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv } from './helpers/serve-process.js';

// Issue 17, item 5: under sustained load vppd's memory grew without a plateau at the default log
// level, because pino buffered every line in memory while stdout (a pipe) drained slower. Here
// `vppd serve` logs at debug to a stdout pipe nobody reads after start-up, under load over real
// sockets: it keeps answering, drops log lines instead of buffering them (counted in
// vppd_log_lines_dropped_total) and its RSS stays bounded. Figures: `npm run bench -- soak`.

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxLoader = pathToFileURL(`${root}node_modules/tsx/dist/loader.mjs`).href;
const autocannon = createRequire(import.meta.url)('autocannon') as (options: object) => Promise<{
  requests: { total: number };
  non2xx: number;
  errors: number;
}>;
const dir = mkdtempSync(join(tmpdir(), 'vppd-logs-'));
let child: ChildProcess | undefined;
afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

describe('log backlog under load (issue 17)', () => {
  it('drops and counts log lines a stalled stdout cannot take, instead of growing without bound', async () => {
    const server = spawn(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'serve'], {
      cwd: dir,
      env: cleanEnv({
        VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 4).toString('base64'),
        VPPD_JWT_SECRET: testJwtSecret,
        VPPD_DATABASE_URL: 'sqlite::memory:',
        VPPD_PORT: '0',
        VPPD_ROLE: 'api',
        VPPD_LOG_LEVEL: 'debug',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = server;
    const stdout = server.stdout as NonNullable<ChildProcess['stdout']>;
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const match = /vppd listening on (\S+)/.exec(text);
        if (match?.[1]) {
          // From here on nobody reads stdout: the pipe fills and stays full.
          stdout.off('data', onData);
          stdout.pause();
          resolve(match[1]);
        }
      };
      stdout.on('data', onData);
      server.once('exit', (code) => reject(new Error(`vppd serve exited with ${code}: ${text}`)));
    });
    const authorization = `Bearer ${await mintToken({ tenantId: 'tenant-logs', roles: [roles.read] })}`;
    const before = rssMb(server.pid as number);
    const result = await autocannon({
      url: `${url}/beta/deviceAppManagement/vppTokens`,
      connections: 50,
      // A fixed amount, not a duration: how many lines are written must not depend on the machine's speed.
      amount: 20_000,
      headers: { authorization },
    });
    expect(result.errors).toBe(0);
    expect(result.non2xx).toBe(0);
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const dropped = Number(/^vppd_log_lines_dropped_total (\d+)/m.exec(metrics)?.[1] ?? 'NaN');
    // Each request writes a debug line of ~700 bytes (at least 300): 20,000 of them are 6-14 MB, and the
    // 4 MiB buffer plus the pipe's 64 KiB take at most ~14,200 lines of 300 bytes.
    expect(result.requests.total).toBe(20_000);
    expect(dropped).toBeGreaterThan(5_000);
    expect(rssMb(server.pid as number) - before).toBeLessThan(150);
  }, 120_000);
});
