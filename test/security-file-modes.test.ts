import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// Issue 17, item 7: with umask 022 the data directory was 0755 and vppd.db, -wal, -shm 0644, so
// every local user could read every tenant's data. What vppd creates is now 0700/0600 whatever the
// umask; an existing directory or file open to group/others gets a start-up warning naming it.

const dir = mkdtempSync(join(tmpdir(), 'vppd-modes-'));
const running: ServeProcess[] = [];
afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const env = {
  VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 5).toString('base64'),
  VPPD_JWT_SECRET: testJwtSecret,
  VPPD_LOG_LEVEL: 'warn',
  VPPD_SHUTDOWN_GRACE: '0s',
};
const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

async function serve(
  args: string[],
  cwd = dir,
  settings: Record<string, string> = env,
): Promise<ServeProcess> {
  const p = await startServeProcess(['--port', '0', ...args], {
    env: cleanEnv(settings),
    cwd,
    shell: 'umask 022',
  });
  running.push(p);
  return p;
}

describe('file modes of the database (issue 17)', () => {
  it('under umask 022, the directories vppd creates are 0700 and the database files 0600', async () => {
    const file = join(dir, 'fresh/nested/vppd.db');
    const p = await serve(['--database', `sqlite:${file}`]);
    expect(modeOf(join(dir, 'fresh'))).toBe('700');
    expect(modeOf(join(dir, 'fresh/nested'))).toBe('700');
    for (const path of [file, `${file}-wal`, `${file}-shm`]) expect(modeOf(path), path).toBe('600');
    expect(p.stdout()).not.toMatch(/accessible to group\/others/);
    expect(await p.stop('SIGTERM')).toBe(0);
  });

  it('serve --demo under umask 022 keeps ./data private too', async () => {
    const cwd = join(dir, 'demo');
    mkdirSync(cwd);
    // Without keys in the environment the demo generates and keeps them in data/demo-secrets.json.
    const p = await serve(['--demo'], cwd, { VPPD_LOG_LEVEL: 'warn', VPPD_SHUTDOWN_GRACE: '0s' });
    expect(modeOf(join(cwd, 'data'))).toBe('700');
    for (const name of ['vppd.db', 'vppd.db-wal', 'vppd.db-shm', 'demo-secrets.json']) {
      expect(modeOf(join(cwd, 'data', name)), name).toBe('600');
    }
    expect(p.stdout()).not.toMatch(/accessible to group\/others/);
  });

  it('warns at start-up about an existing directory and database file open to others', async () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    const file = join(open, 'vppd.db');
    closeSync(openSync(file, 'w'));
    chmodSync(file, 0o644);
    const p = await serve(['--database', `sqlite:${file}`]);
    // Log lines and the listening line are separate writes: wait for both warnings.
    const warned = () => p.stdout().split('accessible to group/others').length - 1;
    for (let i = 0; i < 100 && warned() < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const warnings = p
      .stdout()
      .split('\n')
      .filter((line) => line.includes('accessible to group/others'))
      .map((line) => JSON.parse(line) as { path: string; mode: string; level: number });
    expect(warnings.map((w) => [w.path, w.mode])).toEqual([
      [open, '0755'],
      [file, '0644'],
    ]);
    expect(warnings.every((w) => w.level === 40)).toBe(true);
    // Left as the operator made them.
    expect(modeOf(open)).toBe('755');
  });
});
