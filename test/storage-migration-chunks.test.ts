import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeChunk } from '../src/storage/assignment-chunks.js';
import { createLicenseReadStore } from '../src/storage/license-read-store.js';
import { syncJobKindsAndTurns } from '../src/storage/migrations/0007-sync-job-kinds-and-turns.js';
import { events } from '../src/storage/migrations/0008-events.js';
import { createMigrator, migrateToLatest } from '../src/storage/open-database.js';
import { createSyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { createFakeClock, createSequentialIds } from './helpers/fake-clock.js';
import { countRunRows, listAssignments } from './helpers/license-snapshot-sql.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { openTestStorage, storageEngines } from './helpers/storage-engines.js';

// Migration 0006 on a database written by the previous schema: every license of every run (the
// current snapshot's and a staging run's) comes out of the chunks exactly as it went into the rows.

const dir = mkdtempSync(join(tmpdir(), 'vppd-migration-chunks-'));
const tenantId = 'eeeeeeee-0000-4000-8000-000000000000';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface OldRow {
  run_key: number;
  adam_id: string;
  pricing_param: string;
  seq: number;
  serial_number: string | null;
  client_user_id: string | null;
}

describe.each(storageEngines)('migration 0006_license_assignment_chunks on %s', (kind) => {
  it('converts every assignment row into chunks and drops the old table', async () => {
    const storage = await openTestStorage(kind, {
      sqliteUrl: `sqlite:${join(dir, 'old.db')}`,
      migrate: false,
    });
    const { db } = storage;
    try {
      const migrated = await createMigrator(storage).migrateTo('0005_alerts');
      expect(migrated.error).toBeUndefined();
      // Today's job store claims through what migration 0007 adds, appends events to what 0008 adds and
      // records a run's kind in what 0013 adds: lend them for the old-schema writes, and take them back
      // before the real migrations run.
      await syncJobKindsAndTurns(storage.ddl).up(db as unknown as Kysely<unknown>);
      await events(storage.ddl).up(db as unknown as Kysely<unknown>);
      await sql`alter table sync_runs add column kind text not null default 'licenses'`.execute(db);

      // A token with a claimed sync: its run gets the old rows, committed as the current snapshot.
      const clock = createFakeClock();
      const ids = createSequentialIds('ffffffff');
      const tokens = createVppTokenStore({
        storage,
        cipher: createTokenCipher(Buffer.alloc(32, 5)),
        clock: clock.now,
      });
      const [token] = await seedTokens(tokens, { tenantId, count: 1, newId: ids, now: clock.now });
      const tokenId = token?.id as string;
      const jobs = createSyncJobStore({ storage, newId: ids });
      const claimRun = async () => {
        await jobs.requestSync(tenantId, tokenId, 'api', clock.now());
        const claimed = await jobs.claimNext({
          workerId: 'w',
          now: clock.now(),
          leaseMs: 60_000,
          maxActive: 1,
          maxAttempts: 2,
          newRunId: ids,
        });
        if (claimed?.kind !== 'claimed') throw new Error('no claim');
        return claimed.claim;
      };
      const claim = await claimRun();
      const oldDb = db as unknown as Kysely<{
        license_runs: { run_key?: number; run_id: string };
        license_assignments: OldRow;
      }>;
      const runKeyOf = async (runId: string) =>
        Number(
          (
            await oldDb
              .insertInto('license_runs')
              .values({ run_id: runId })
              .returning('run_key')
              .executeTakeFirstOrThrow()
          ).run_key,
        );
      const current = await runKeyOf(claim.runId);
      // 1,300 licenses over 5 assets in a random order (one asset gets more than a chunk's 128).
      const picks = fc.sample(fc.integer({ min: 0, max: 9 }), { numRuns: 1300, seed: 42 });
      const rows: OldRow[] = picks.map((p, seq) => ({
        run_key: current,
        adam_id: `${500 + Math.min(p, 4)}`,
        pricing_param: p % 2 === 0 ? 'STDQ' : 'PLUS',
        seq,
        serial_number: seq % 4 === 0 ? null : `SN-${seq}`,
        client_user_id: seq % 4 === 0 ? `user-é-${seq}` : null,
      }));
      for (let i = 0; i < rows.length; i += 100) {
        await oldDb
          .insertInto('license_assignments')
          .values(rows.slice(i, i + 100))
          .execute();
      }
      await jobs.commit(
        claim,
        {
          locationUid: 'loc',
          locationName: 'Location',
          countryOrRegion: 'us',
          expirationDateTime: undefined,
          versionId: 'v1',
          assetCount: 0,
          assignmentCount: rows.length,
          pageCount: 3,
          totalLicenseCount: 0,
          usedLicenseCount: 0,
          availableLicenseCount: 0,
        },
        clock.now(),
        new Date(clock.now().getTime() + 3_600_000),
      );
      // A second run, still staging, with a few rows of its own.
      const staging = await claimRun();
      const stagingKey = await runKeyOf(staging.runId);
      const stagedRows: OldRow[] = [0, 1, 2].map((seq) => ({
        run_key: stagingKey,
        adam_id: '500',
        pricing_param: 'STDQ',
        seq,
        serial_number: `NEW-${seq}`,
        client_user_id: null,
      }));
      await oldDb.insertInto('license_assignments').values(stagedRows).execute();

      await sql`drop table sync_tenant_turns`.execute(db);
      for (const table of ['events', 'event_heads', 'event_cursors'])
        await sql`drop table ${sql.table(table)}`.execute(db);
      await sql`alter table sync_jobs drop column kind`.execute(db);
      await sql`alter table sync_runs drop column kind`.execute(db);
      expect(await migrateToLatest(storage)).toContain('0006_license_assignment_chunks');
      const tables = await db.introspection.getTables();
      expect(tables.map((t) => t.name)).toContain('license_assignment_chunks');
      expect(tables.map((t) => t.name)).not.toContain('license_assignments');

      // Chunks decode to the rows, run by run, and none is larger than 128.
      const chunks = await db.selectFrom('license_assignment_chunks').selectAll().execute();
      expect(Math.max(...chunks.map((c) => c.holder_count))).toBeLessThanOrEqual(128);
      const decoded = chunks.flatMap((c) =>
        decodeChunk(c).map((l) => ({
          run_key: Number(c.run_key),
          adam_id: c.adam_id,
          pricing_param: c.pricing_param,
          seq: l.seq,
          serial_number: l.serialNumber,
          client_user_id: l.clientUserId,
        })),
      );
      const order = (list: OldRow[]) =>
        [...list].sort(
          (a, b) => a.run_key - b.run_key || a.seq - b.seq || a.adam_id.localeCompare(b.adam_id),
        );
      expect(order(decoded)).toEqual(order([...rows, ...stagedRows]));

      // And the current snapshot reads as before.
      const all = await listAssignments(db, tenantId, tokenId, { limit: 5000 });
      expect(all.map((a) => a.seq)).toEqual(rows.map((r) => r.seq));
      const app = { tokenId, adamId: '504', pricingParam: 'STDQ' };
      const appRows = rows.filter((r) => r.adam_id === app.adamId && r.pricing_param === app.pricingParam);
      expect(appRows.length).toBeGreaterThan(128);
      const reads = createLicenseReadStore({ db });
      expect(await reads.countAssignedLicenses(tenantId, app)).toBe(appRows.length);
      const page = await reads.listAssignedLicenses(tenantId, app, {
        fromSeq: appRows[120]?.seq as number,
        limit: 30,
      });
      expect(page).toEqual(
        appRows.slice(120, 150).map((r) => ({
          seq: r.seq,
          serialNumber: r.serial_number,
          clientUserId: r.client_user_id,
        })),
      );
      expect((await countRunRows(db, staging.runId)).assignments).toBe(3);
    } finally {
      await storage.close();
    }
  });
});
