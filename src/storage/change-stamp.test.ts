import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
} from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../config.js';
import { createChangeStamp } from './change-stamp.js';
import type { DatabaseSchema } from './database-schema.js';
import { openDatabase, type VppdDatabase } from './open-database.js';

let dir: string;
let file: string;
let db: VppdDatabase;
let other: VppdDatabase;

const tenantId = 'cafe0000-0000-4000-8000-000000000001';
const addTenant = (on: VppdDatabase, id: string) =>
  on.insertInto('tenants').values({ id, created_at: '2026-03-01T00:00:00.000Z' }).execute();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vppd-change-stamp-'));
  file = join(dir, 'vppd.db');
  db = await openDatabase(parseDatabaseUrl(`sqlite:${file}`));
  // A second connection on the same file: what another vppd process is to this one.
  other = await openDatabase(parseDatabaseUrl(`sqlite:${file}`));
  await addTenant(db, tenantId);
});

afterAll(async () => {
  await other?.destroy();
  await db?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('createChangeStamp on SQLite', () => {
  it('stays the same while nothing is written, reads included', async () => {
    const stamp = createChangeStamp(db);
    const first = await stamp();
    expect(first).toMatch(/^\d+:\d+$/);
    await db.selectFrom('tenants').selectAll().execute();
    await other.selectFrom('tenants').selectAll().execute();
    expect(await stamp()).toBe(first);
  });

  it('changes after a write on its own connection, committed or rolled back', async () => {
    const stamp = createChangeStamp(db);
    const before = await stamp();
    await addTenant(db, 'cafe0000-0000-4000-8000-000000000002');
    const afterInsert = await stamp();
    expect(afterInsert).not.toBe(before);
    await db
      .transaction()
      .execute(async (trx) => {
        await addTenant(trx, 'cafe0000-0000-4000-8000-000000000003');
        throw new Error('roll back');
      })
      .catch(() => undefined);
    // A rolled-back write may change the stamp too: that only costs a re-read, never a stale answer.
    const afterRollback = await stamp();
    const stored = await db.selectFrom('tenants').select('id').execute();
    expect(stored.map((t) => t.id)).not.toContain('cafe0000-0000-4000-8000-000000000003');
    expect([afterInsert, afterRollback]).not.toContain(before);
  });

  it('changes after another connection commits, and a call after the commit always sees it', async () => {
    const stamp = createChangeStamp(db);
    const before = await stamp();
    const pending = stamp();
    await addTenant(other, 'cafe0000-0000-4000-8000-000000000004');
    const after = stamp();
    expect(await after).not.toBe(before);
    // The call made before the commit shares the same read, which followed the commit.
    expect(await pending).toBe(await after);
  });

  it('changes after another process commits to the file', async () => {
    const stamp = createChangeStamp(db);
    const before = await stamp();
    const script = `const D = require('better-sqlite3'); const d = new D(process.argv[1]);
d.prepare("insert into tenants (id, created_at) values ('cafe0000-0000-4000-8000-000000000005', 'x')").run();
d.close();`;
    execFileSync(process.execPath, ['-e', script, file], { cwd: process.cwd() });
    expect(await stamp()).not.toBe(before);
    const stored = await db.selectFrom('tenants').select('id').execute();
    expect(stored.map((t) => t.id)).toContain('cafe0000-0000-4000-8000-000000000005');
  });

  it('gives calls of one event-loop turn one shared read', async () => {
    const stamp = createChangeStamp(db);
    const calls = [stamp(), stamp(), stamp()];
    expect(calls[1]).toBe(calls[0]);
    expect(calls[2]).toBe(calls[0]);
    const values = await Promise.all(calls);
    expect(new Set(values).size).toBe(1);
    // The next turn reads again.
    expect(stamp()).not.toBe(calls[0]);
  });

  it('waits for this process’s open transaction and sees what it committed', async () => {
    const stamp = createChangeStamp(db);
    const before = await stamp();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const writing = db.transaction().execute(async (trx) => {
      await addTenant(trx, 'cafe0000-0000-4000-8000-000000000006');
      await gate;
    });
    await new Promise((resolve) => setImmediate(resolve));
    const during = stamp();
    release();
    await writing;
    expect(await during).not.toBe(before);
    await expect(sql`select 1`.execute(db)).resolves.toBeDefined();
  });
});

describe('createChangeStamp on an engine without a stamp', () => {
  it('answers undefined, so callers keep nothing', async () => {
    const cold = new Kysely<DatabaseSchema>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (k) => new PostgresIntrospector(k),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
    });
    expect(await createChangeStamp(cold)()).toBeUndefined();
    await cold.destroy();
  });
});
