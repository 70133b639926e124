// `npm run bench -- storage-bulk [--rounds N] [--licenses N]`: how a sync's license staging writes on
// PostgreSQL with each multi-row insert strategy of src/storage/postgres/bulk-insert.ts — `copy … from
// stdin` (the default), one array parameter per column (`insert … select * from unnest($1::text[], …)`)
// or one parameter per value (`insert … values ($1, …), (…)`) — and on SQLite for reference. Each round stages, through the real
// LicenseStore, 1,000 assets and 200,000 licenses (Apple's order: random across assets, written in
// batches of 8,192 as a sync does) into a fresh database; rounds alternate strategies; medians.
// PostgreSQL is a throw-away server started like the tests' (test/setup/postgres-server.ts).

import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { StorageEngine } from '../src/storage/engine.js';
import { createLicenseStore, type LicenseAssetInput } from '../src/storage/license-store.js';
import { type PostgresBulkStrategy, postgresBulkInsert } from '../src/storage/postgres/bulk-insert.js';
import { createSyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { seedTokens } from '../test/helpers/seed-tokens.js';
import { openTestStorage } from '../test/helpers/storage-engines.js';
import startPostgres from '../test/setup/postgres-server.js';

const tenantId = 'bbbbbbbb-0000-4000-8000-00000000b01c';

type Variant = {
  readonly name: string;
  readonly engine: 'sqlite' | 'postgres';
  readonly strategy?: PostgresBulkStrategy;
};

const variants: readonly Variant[] = [
  { name: 'postgres unnest', engine: 'postgres', strategy: 'unnest' },
  { name: 'postgres values', engine: 'postgres', strategy: 'values' },
  { name: 'postgres copy', engine: 'postgres', strategy: 'copy' },
  { name: 'sqlite (file)', engine: 'sqlite' },
];

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

async function stageOnce(variant: Variant, licenses: number, dir: string, round: number) {
  const opened = await openTestStorage(variant.engine, { sqliteUrl: `sqlite:${dir}/bulk-${round}.db` });
  const storage: StorageEngine =
    variant.strategy === undefined
      ? opened
      : { ...opened, bulkInsert: (spec) => postgresBulkInsert(spec, variant.strategy) };
  try {
    const tokens = createVppTokenStore({
      storage,
      cipher: createTokenCipher(Buffer.alloc(32, 7)),
      clock: () => new Date(),
    });
    const [token] = await seedTokens(tokens, { tenantId, count: 1 });
    const jobs = createSyncJobStore({ storage, newId: () => crypto.randomUUID() });
    await jobs.requestSync(tenantId, token?.id as string, 'api', new Date());
    const claimed = await jobs.claimNext({
      workerId: 'bench',
      now: new Date(),
      leaseMs: 600_000,
      maxActive: 1,
      maxAttempts: 2,
      newRunId: () => crypto.randomUUID(),
    });
    if (claimed?.kind !== 'claimed') throw new Error('no claim');
    const run = { runId: claimed.claim.runId, tenantId, tokenId: token?.id as string };
    const store = createLicenseStore({ storage });
    const assets: LicenseAssetInput[] = Array.from({ length: 1000 }, (_, i) => ({
      adamId: String(400_000_000 + i),
      pricingParam: i % 3 === 0 ? 'PLUS' : 'STDQ',
      productType: 'App',
      totalCount: 1000,
      assignedCount: 200,
      availableCount: 800,
      retiredCount: 0,
      deviceAssignable: true,
      revocable: true,
      supportedPlatforms: ['iOS', 'macOS'],
    }));
    let seed = round + 1;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const records = Array.from({ length: licenses }, (_, i) => {
      const asset = assets[Math.floor(random() * assets.length)] as LicenseAssetInput;
      return i % 3 === 0
        ? { adamId: asset.adamId, pricingParam: asset.pricingParam, clientUserId: `user-${i}@example.com` }
        : {
            adamId: asset.adamId,
            pricingParam: asset.pricingParam,
            serialNumber: `C02${i.toString(36).toUpperCase().padStart(9, '0')}`,
          };
    });
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < assets.length; i += 549) await store.insertAssets(run, assets.slice(i, i + 549));
    const writer = store.assignmentWriter(run.runId);
    for (let i = 0; i < records.length; i += 1000) await writer.write(records.slice(i, i + 1000));
    await writer.close();
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    const { rows } = await sql<{ n: number }>`select count(*) as n from license_assignment_chunks`.execute(
      storage.db,
    );
    return { ms, cpuMs, chunks: Number(rows[0]?.n) };
  } finally {
    await opened.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const rounds = option(args, '--rounds', 5);
  const licenses = option(args, '--licenses', 200_000);
  const stop = await startPostgres();
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir, loadavg } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/vppd-bench-bulk-`);
  try {
    process.stdout.write(
      `license staging: 1,000 assets + ${licenses.toLocaleString('en')} licenses per round, ${rounds} rounds (+1 warm-up), node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
    const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const cpus = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round <= rounds; round++) {
      for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
        const { ms, cpuMs, chunks } = await stageOnce(variant, licenses, dir, round);
        if (round > 0) times.get(variant.name)?.push(ms);
        if (round > 0) cpus.get(variant.name)?.push(cpuMs);
        if (round === 1) process.stdout.write(`  ${variant.name}: ${chunks} chunk rows\n`);
      }
    }
    const median = (list: number[]) =>
      [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? Number.NaN;
    const base = median(times.get('postgres values') ?? []);
    for (const [name, list] of times) {
      const m = median(list);
      process.stdout.write(
        `  ${name.padEnd(16)} median ${m.toFixed(0).padStart(5)} ms  (${list.map((t) => t.toFixed(0)).join('/')})  ${(m / base).toFixed(2)}x of postgres values; vppd CPU median ${median(cpus.get(name) ?? []).toFixed(0)} ms\n`,
      );
    }
    process.stdout.write(
      `load average at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await stop();
  }
}
