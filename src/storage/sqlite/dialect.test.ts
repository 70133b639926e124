import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../open-database.js';
import { createSqliteDialect } from './dialect.js';

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

  it('begins transactions IMMEDIATE: a read-then-write never fails because another connection wrote in between', async () => {
    const filename = join(dir, 'immediate.db');
    const db = await openDatabase({ kind: 'sqlite', url: `sqlite:${filename}`, filename });
    // Another connection to the file (the sync thread's, another process's) that does not wait.
    const other = new Database(filename, { timeout: 0 });
    try {
      await sql`create table counter (n integer not null)`.execute(db);
      await sql`insert into counter (n) values (0)`.execute(db);
      const written = await db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ n: number }>`select n from counter`.execute(trx);
        // The other writer comes in between the read and the write: the lock is already taken.
        expect(() => other.prepare('update counter set n = 100').run()).toThrow(/database is locked/);
        await sql`update counter set n = ${(rows[0]?.n ?? 0) + 1}`.execute(trx);
        return (rows[0]?.n ?? 0) + 1;
      });
      expect(written).toBe(1);
      other.prepare('update counter set n = n + 10').run();
      expect(other.prepare('select n from counter').pluck().get()).toBe(11);
    } finally {
      other.close();
      await db.destroy();
    }
  });

  it('waits for another connection’s write lock on timers, not by blocking the thread, then fails after the timeout', async () => {
    const filename = join(dir, 'waiting.db');
    const db = new Kysely<{ counter: { n: number } }>({
      dialect: createSqliteDialect({ filename, busyTimeoutMs: 400 }).dialect,
    });
    const other = new Database(filename, { timeout: 0 });
    try {
      await sql`create table counter (n integer not null)`.execute(db);
      await sql`insert into counter (n) values (0)`.execute(db);
      // The other connection holds the write lock; our write waits for it.
      other.exec('begin immediate');
      let ticks = 0;
      const ticking = setInterval(() => ticks++, 5);
      const write = db.updateTable('counter').set({ n: 1 }).execute();
      let settled = false;
      void write.then(
        () => (settled = true),
        () => (settled = true),
      );
      // Timers run while the write waits: the thread is never blocked. The write has not happened.
      await vi.waitFor(() => expect(ticks).toBeGreaterThan(2));
      expect(settled).toBe(false);
      other.exec('commit');
      await write;
      clearInterval(ticking);
      expect(other.prepare('select n from counter').pluck().get()).toBe(1);

      // Held past the timeout, the write fails as SQLite's own busy timeout would, and changes nothing.
      other.exec('begin immediate');
      await expect(db.updateTable('counter').set({ n: 2 }).execute()).rejects.toMatchObject({
        code: 'SQLITE_BUSY',
      });
      other.exec('rollback');
      expect(other.prepare('select n from counter').pluck().get()).toBe(1);
    } finally {
      other.close();
      await db.destroy();
    }
  });
});
