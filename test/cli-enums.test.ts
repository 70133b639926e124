import { describe, expect, it } from 'vitest';
import { runVppd } from './helpers/run-cli.js';

describe('vppd enums (as a process)', () => {
  it('--json shows the four sync statuses with values 0-3', async () => {
    const result = await runVppd(['enums', 'vppTokenSyncStatus', '--json']);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { name: string; members: { name: string; value: number }[] };
    expect(parsed.name).toBe('vppTokenSyncStatus');
    expect(parsed.members.map((m) => [m.name, m.value])).toEqual([
      ['none', 0],
      ['inProgress', 1],
      ['completed', 2],
      ['failed', 3],
    ]);
  });

  it('--lang ru shows Russian descriptions with the same values', async () => {
    const result = await runVppd(['enums', 'vppTokenSyncStatus', '--lang', 'ru', '--json']);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as {
      members: { name: string; value: number; description: string }[];
    };
    expect(parsed.members.map((m) => m.value)).toEqual([0, 1, 2, 3]);
    expect(parsed.members[3]).toEqual({
      name: 'failed',
      value: 3,
      description: 'Последняя синхронизация завершилась с ошибкой.',
    });
  });

  it('decodes a numeric value from an Intune export', async () => {
    const result = await runVppd(['enums', 'vppTokenSyncStatus', '3']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('vppTokenSyncStatus 3 = failed: The last sync failed.\n');
  });

  it('prints every enum as a table', async () => {
    const result = await runVppd(['enums']);
    expect(result.code).toBe(0);
    for (const name of [
      'vppTokenSyncStatus',
      'vppTokenState',
      'actionState',
      'appleDeviceDeliveryProtocol',
    ]) {
      expect(result.stdout).toContain(name);
    }
    expect(result.stdout).toMatch(/appleDeviceDeliveryProtocol \(evolvable\)/);
  });

  it.each([
    [['enums', 'vppTokenSyncStatus', '7'], /7 is not a value of vppTokenSyncStatus; values: 0, 1, 2, 3/],
    [['enums', 'vppTokenSyncStatus', 'Failed'], /'Failed' is not a member of vppTokenSyncStatus/],
    [['enums', 'syncStatus'], /unknown enum 'syncStatus'/],
    [['enums', '--lang', 'de'], /--lang must be one of en, ru/],
  ])('%j exits non-zero with one clear line', async (args, message) => {
    const result = await runVppd(args);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });
});
