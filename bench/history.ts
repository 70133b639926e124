// `npm run bench -- history [--tokens N] [--days N] [--interval-hours N] [--prune-every-days N]`
//
// How big the database gets per 1,000 tokens per year (issue 18): `--tokens` (default 1,000) tokens
// sync every `--interval-hours` (default 12) for `--days` (default 365) simulated days, each sync one
// `sync_runs` row like a real one (completed, with location, version and counts; one in 20 failed
// with an Apple message). Two SQLite files side by side in the same run: one pruned by vppd's
// HistoryPruner (90-day retention) every `--prune-every-days` (default 7; vppd prunes hourly, so its
// steady state is a little smaller), the baseline never pruned. Printed: rows, file size, bytes per
// row, and the ratio. License snapshots are not included: they are sized by the locations, not by time.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { pino } from 'pino';
import { openStorage, type VppdDatabase } from '../src/storage/open-database.js';
import { createSyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { HistoryPruner } from '../src/sync/history-pruner.js';
import { createFakeClock } from '../test/helpers/fake-clock.js';
import { seedTokens } from '../test/helpers/seed-tokens.js';

const tenantId = '415e0000-0000-4000-8000-000000000001';
const day = 86_400_000;
const out = (line: string) => process.stdout.write(`${line}\n`);

async function fileBytes(db: VppdDatabase, file: string): Promise<number> {
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
  return statSync(file).size;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tokens: { type: 'string', default: '1000' },
      days: { type: 'string', default: '365' },
      'interval-hours': { type: 'string', default: '12' },
      'prune-every-days': { type: 'string', default: '7' },
    },
  });
  const tokenCount = Number(values.tokens);
  const days = Number(values.days);
  const perDay = Math.max(1, Math.round(24 / Number(values['interval-hours'])));
  const pruneEvery = Math.max(1, Number(values['prune-every-days']));
  const dir = mkdtempSync(join(tmpdir(), 'vppd-bench-history-'));
  const started = performance.now();
  try {
    const base = Date.parse('2026-01-01T00:00:00.000Z');
    const clock = createFakeClock(new Date(base));
    const sides = await Promise.all(
      (['pruned', 'baseline'] as const).map(async (name) => {
        const file = join(dir, `${name}.db`);
        const dbStorage = await openStorage({ kind: 'sqlite', url: `sqlite:${file}`, filename: file });
        const db = dbStorage.db;
        const tokens = createVppTokenStore({
          storage: dbStorage,
          cipher: createTokenCipher(Buffer.alloc(32, 9)),
          clock: clock.now,
        });
        let n = 0;
        const ids = await seedTokens(tokens, {
          tenantId,
          count: tokenCount,
          now: clock.now,
          newId: () => `70000000-0000-4000-8000-${(++n).toString(16).padStart(12, '0')}`,
        });
        return { name, file, db, storage: dbStorage, tokenIds: ids.map((t) => t.id) };
      }),
    );
    const [pruned, unpruned] = sides;
    if (!pruned || !unpruned) throw new Error('two databases expected');
    const emptyBytes = await fileBytes(pruned.db, pruned.file);
    const jobs = createSyncJobStore({ storage: pruned.storage, newId: () => crypto.randomUUID() });
    const pruner = new HistoryPruner({
      jobs,
      clock: clock.now,
      logger: pino({ level: 'silent' }),
      retentionMs: 90 * day,
    });
    let runNo = 0;
    for (let d = 0; d < days; d++) {
      for (let s = 0; s < perDay; s++) {
        const startedAt = new Date(base + d * day + (s * day) / perDay);
        const rows = pruned.tokenIds.map((tokenId, i) => {
          const failed = (runNo + i) % 20 === 0;
          const runId = `r${(runNo * tokenCount + i).toString(16).padStart(10, '0')}-0000-4000-8000-000000000000`;
          return {
            id: runId,
            tenant_id: tenantId,
            token_id: tokenId,
            job_id: crypto.randomUUID(),
            trigger: 'scheduled',
            attempt: 1,
            worker_id: 'vppd-host:12345:1a2b3c4d',
            started_at: startedAt.toISOString(),
            finished_at: new Date(startedAt.getTime() + 4_000).toISOString(),
            outcome: failed ? ('failed' as const) : ('completed' as const),
            failure_kind: failed ? 'appleUnavailable' : null,
            failure_reason: failed ? 2 : null,
            error_message: failed
              ? 'Apple answered 503 Service Unavailable to GET /assignments (3 attempts)'
              : null,
            apple_error_number: null,
            http_status: failed ? 503 : null,
            location_uid: `${1000000000 + i}`,
            version_id: failed ? null : `${startedAt.getTime()}`,
            asset_count: failed ? null : 40,
            assignment_count: failed ? null : 3000,
            page_count: failed ? null : 8,
            staging_cleared: 1,
            kind: 'licenses',
          };
        });
        runNo++;
        for (const side of sides) {
          await side.db.transaction().execute(async (trx) => {
            for (let i = 0; i < rows.length; i += 500) {
              await trx
                .insertInto('sync_runs')
                .values(rows.slice(i, i + 500))
                .execute();
            }
          });
        }
      }
      if ((d + 1) % pruneEvery === 0) {
        clock.set(new Date(base + (d + 1) * day));
        await pruner.prune();
      }
    }
    const count = async (db: VppdDatabase) =>
      Number((await sql<{ n: number }>`select count(*) as n from sync_runs`.execute(db)).rows[0]?.n ?? 0);
    out(
      `history benchmark — ${tokenCount} tokens, a sync every ${24 / perDay} h for ${days} days ` +
        `(${(days * perDay * tokenCount).toLocaleString('en-US')} runs), pruned every ${pruneEvery} days ` +
        `with 90-day retention; empty database with the tokens ${(emptyBytes / 1e6).toFixed(1)} MB; ` +
        `${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const figures: { name: string; rows: number; bytes: number }[] = [];
    for (const side of sides) {
      const rows = await count(side.db);
      const bytes = await fileBytes(side.db, side.file);
      figures.push({ name: side.name, rows, bytes });
      out(
        `  ${side.name.padEnd(8)} ${rows.toLocaleString('en-US').padStart(10)} runs kept, file ` +
          `${(bytes / 1e6).toFixed(1)} MB, ${((bytes - emptyBytes) / Math.max(1, rows)).toFixed(0)} bytes per run`,
      );
    }
    const [p, b] = figures;
    if (p && b) {
      out(
        `  per 1,000 tokens after the run: ${((((p.bytes - emptyBytes) / tokenCount) * 1000) / 1e6).toFixed(0)} MB ` +
          `of history pruned vs ${((((b.bytes - emptyBytes) / tokenCount) * 1000) / 1e6).toFixed(0)} MB unpruned ` +
          `(${(b.bytes / p.bytes).toFixed(1)}x the file)`,
      );
    }
    for (const side of sides) await side.db.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
