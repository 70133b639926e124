import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/program.js';

// `vppd apple-sim` as a real process: the token files written by one run are accepted by a later one.

const root = join(import.meta.dirname, '..');

function vppd(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline >= 0) resolve(buffered.slice(0, newline));
    });
    child.on('close', (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

describe('vppd apple-sim', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('writes token files that a later simulator with the same seed accepts, and stops on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vppd-sim-tokens-'));
    dirs.push(dir);
    // In-process (same code path as the binary, minus a second process start-up).
    const out: string[] = [];
    const code = await runCli(['node', 'vppd', 'apple-sim', 'tokens', '--out', dir, '--seed', 'cli-seed'], {
      stdout: (text) => out.push(text),
      stderr: (text) => out.push(text),
    });
    expect(code).toBe(0);
    expect(out.join('')).toContain('small.vpptoken');
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(
      [
        'duplicate-2.vpptoken',
        'duplicate.vpptoken',
        'expired.vpptoken',
        'external-mdm.vpptoken',
        'large.vpptoken',
        'revoked.vpptoken',
        'small.vpptoken',
      ].sort(),
    );
    expect((await stat(join(dir, 'small.vpptoken'))).mode & 0o777).toBe(0o600);

    const server = vppd([
      'apple-sim',
      '--port',
      '0',
      '--seed',
      'cli-seed',
      '--no-rate-limit',
      '--page-size',
      '50',
    ]);
    children.push(server);
    const done = finished(server);
    const baseUrl = await firstLine(server);
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mdm\/v2$/);

    const token = (await readFile(join(dir, 'small.vpptoken'), 'utf8')).trim();
    const config = await fetch(`${baseUrl}/client/config`, { headers: { authorization: `Bearer ${token}` } });
    expect(config.status).toBe(200);
    expect(((await config.json()) as { locationName: string }).locationName).toBe('Springfield Elementary');
    const page = await fetch(`${baseUrl}/assignments`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await page.json()) as { size: number }).size).toBe(50);
    const expired = (await readFile(join(dir, 'expired.vpptoken'), 'utf8')).trim();
    const refused = await fetch(`${baseUrl}/client/config`, {
      headers: { authorization: `Bearer ${expired}` },
    });
    expect(((await refused.json()) as { errorNumber: number }).errorNumber).toBe(9621);

    server.kill('SIGTERM');
    const result = await done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('apple-sim stopped (SIGTERM)');
  });

  it('refuses a bad option with one line', async () => {
    const err: string[] = [];
    const code = await runCli(['node', 'vppd', 'apple-sim', '--port', 'eighty'], {
      stdout: () => {},
      stderr: (text) => err.push(text),
    });
    expect(code).toBe(1);
    expect(err.join('').trim().split('\n')).toHaveLength(1);
    expect(err.join('')).toContain('--port');
  });

  it('refuses a bad --notification-retry with one line', async () => {
    for (const value of ['1,2,3', 'soon']) {
      const err: string[] = [];
      const code = await runCli(['node', 'vppd', 'apple-sim', '--port', '0', '--notification-retry', value], {
        stdout: () => {},
        stderr: (text) => err.push(text),
      });
      expect(code).toBe(1);
      expect(err.join('').trim().split('\n')).toHaveLength(1);
      expect(err.join('')).toContain('--notification-retry');
    }
  });
});
