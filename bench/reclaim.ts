// `npm run bench -- reclaim [--assignments N] [--keep N] [--rounds N]`
//
// Reclaim planning (issue 15): a dry-run reclaim — the token read, every license of its snapshot decoded,
// the plan per app computed against a keep-list — over a snapshot of `--assignments` licenses (default
// 200,000, synced for real from the Apple simulator into a SQLite file) with a keep-list of `--keep` serial
// numbers (default 150,000: two thirds of the snapshot's serials, then serials it does not hold). Baseline, in the
// same run: reading the same snapshot (every chunk decoded into holders per app), nothing planned.
// Printed: best and median wall time of each over `--rounds` alternating rounds (default 5) and their ratio,
// and the peak RSS growth of a planning round over the RSS before it (sampled every 2 ms, after a GC).
// Targets: planning <= 2 s and <= 150 MB RSS growth.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createSnapshotPatches } from '../src/storage/license-operations/snapshot-patch.js';
import { tenantA } from '../test/helpers/graph-test-app.js';
import { createSyncHarness } from '../test/helpers/sync-harness.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Runs `fn`, sampling RSS every 2 ms; answers its time and the peak RSS growth over the RSS before. */
async function measure(fn: () => Promise<unknown>): Promise<{ ms: number; rssGrowth: number }> {
  gc();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 2);
  const started = performance.now();
  await fn();
  const ms = performance.now() - started;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { ms, rssGrowth: peak - before };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      assignments: { type: 'string', default: '200000' },
      keep: { type: 'string', default: '150000' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const assignments = Number(values.assignments);
  const keepCount = Number(values.keep);
  const rounds = Math.max(1, Number(values.rounds));
  const dir = mkdtempSync(join(tmpdir(), 'vppd-bench-reclaim-'));
  const file = join(dir, 'vppd.db');
  const harness = await createSyncHarness({
    database: `sqlite:${file}`,
    sim: {
      seed: 'bench-reclaim',
      pageSize: 1000,
      locations: [
        {
          id: 'big',
          name: 'Big',
          orgName: 'Big Org',
          countryCode: 'US',
          assets: 1000,
          assignments,
          users: Math.max(100, Math.floor(assignments / 10)),
        },
      ],
    },
  });
  try {
    const token = await harness.upload('big');
    const tokenId = token.id as string;
    await harness.syncNow();
    const synced = await harness.token(tokenId);
    if (synced.lastSyncStatus !== 'completed')
      throw new Error(`the sync ended ${String(synced.lastSyncStatus)}`);
    const patches = createSnapshotPatches({ storage: harness.context.storage });
    const holders = (await patches.holdersByAsset(tenantA, tokenId)) ?? [];
    const held = holders.reduce((n, a) => n + a.serialNumbers.length + a.clientUserIds.length, 0);
    const serials = [...new Set(holders.flatMap((a) => a.serialNumbers))];
    // Two thirds of the snapshot's serials keep their licenses, the rest are released; the keep-list is
    // filled up with serials the snapshot does not hold (an MDM's export lists devices without licenses).
    const keep = serials.filter((_, i) => i % 3 !== 0).slice(0, keepCount);
    for (let i = 0; keep.length < keepCount; i++) keep.push(`NOT-HELD-${i}`);
    const request = {
      keepSerialNumbers: new Set(keep),
      keepClientUserIds: new Set<string>(),
      apps: undefined,
      dryRun: true,
    };
    out(
      `reclaim benchmark — snapshot of ${held.toLocaleString('en-US')} licenses (${holders.length} assets, ` +
        `${serials.length.toLocaleString('en-US')} distinct serials), keep-list of ${keep.length.toLocaleString('en-US')} serials, ` +
        `${rounds} rounds, SQLite file`,
    );
    const plan: { ms: number; rssGrowth: number }[] = [];
    const read: { ms: number; rssGrowth: number }[] = [];
    let release = 0;
    // The first (cold) round of each, then alternating rounds so both sides see the same machine.
    const coldPlan = await measure(() =>
      harness.context.licenseOperations.reclaim(tenantA, tokenId, request),
    );
    const coldRead = await measure(() => patches.holdersByAsset(tenantA, tokenId));
    for (let r = 0; r < rounds; r++) {
      plan.push(
        await measure(async () => {
          const result = await harness.context.licenseOperations.reclaim(tenantA, tokenId, request);
          release = result.plan.release;
        }),
      );
      read.push(await measure(() => patches.holdersByAsset(tenantA, tokenId)));
    }
    const best = (xs: { ms: number }[]) => Math.min(...xs.map((x) => x.ms));
    const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
    out(
      `  baseline (read the snapshot): best ${best(read).toFixed(0)} ms, median ${median(read.map((x) => x.ms)).toFixed(0)} ms, ` +
        `peak RSS growth ${mb(Math.max(...read.map((x) => x.rssGrowth)))} MB`,
    );
    out(
      `  reclaim plan (dry run):       best ${best(plan).toFixed(0)} ms, median ${median(plan.map((x) => x.ms)).toFixed(0)} ms, ` +
        `peak RSS growth ${mb(Math.max(...plan.map((x) => x.rssGrowth)))} MB; releases ${release.toLocaleString('en-US')}`,
    );
    out(
      `  cold first rounds: plan ${coldPlan.ms.toFixed(0)} ms, ${mb(coldPlan.rssGrowth)} MB RSS growth; ` +
        `read ${coldRead.ms.toFixed(0)} ms, ${mb(coldRead.rssGrowth)} MB`,
    );
    out(
      `  ratio to baseline: best ${(best(plan) / best(read)).toFixed(2)}x, median ` +
        `${(median(plan.map((x) => x.ms)) / median(read.map((x) => x.ms))).toFixed(2)}x ` +
        `(targets: plan <= 2000 ms, <= 150 MB)`,
    );
  } finally {
    await harness.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
