import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../open-database.js';

const dir = mkdtempSync(join(tmpdir(), 'vppd-dialect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pragma(db: Awaited<ReturnType<typeof openDatabase>>, name: string): Promise<unknown> {
  const { rows } = await sql<Record<string, unknown>>`pragma ${sql.raw(name)}`.execute(db);
  return Object.values(rows[0] ?? {})[0];
}

describe('the SQLite connection vppd opens', () => {
  it('is a WAL file with foreign keys, NORMAL sync and a checkpoint every 8,000 pages', async () => {
    const filename = join(dir, 'vppd.db');
    const db = await openDatabase({ kind: 'sqlite', url: `sqlite:${filename}`, filename });
    try {
      expect(await pragma(db, 'journal_mode')).toBe('wal');
      expect(await pragma(db, 'foreign_keys')).toBe(1);
      expect(await pragma(db, 'synchronous')).toBe(1);
      expect(await pragma(db, 'wal_autocheckpoint')).toBe(8000);
      expect(await pragma(db, 'journal_size_limit')).toBe(64 * 1024 * 1024);
    } finally {
      await db.destroy();
    }
  });

  it('in memory keeps the foreign keys (it has no journal file to tune)', async () => {
    const db = await openDatabase({ kind: 'sqlite-memory', url: 'sqlite::memory:' });
    try {
      expect(await pragma(db, 'foreign_keys')).toBe(1);
      expect(await pragma(db, 'journal_mode')).toBe('memory');
    } finally {
      await db.destroy();
    }
  });
});
