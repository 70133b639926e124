// `npm run bench -- apple [--assignments N] [--page-size N] [--rounds N] [--limited-pages N]`
//
// The Apple client against the Apple simulator over real HTTP on loopback.
// (1) Rate limit off: the client fetches and parses every assignments page of a large location (5 in
//     flight); baseline = plain undici `request` + JSON.parse of the same pages with the same concurrency.
// (2) Rate limit on (simulator 15 req/s, client limit 15 from service/config): elapsed time against the
//     floor `requests / 15` seconds, where `requests` is what the simulator counted (429s included).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { type AppleHttp, createAppleClient, createUndiciHttp } from '../src/apple/index.js';
import { startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { LocationSeed } from '../src/apple-sim/sim-location.js';

interface Measure {
  readonly ms: number;
  readonly pages: number;
  readonly records: number;
  readonly bytes: number;
}

function location(id: string, assignments: number): LocationSeed {
  return {
    id,
    name: `Bench ${id}`,
    orgName: 'Bench Org',
    countryCode: 'US',
    assets: Math.max(50, Math.min(2000, Math.ceil(assignments / 400))),
    assignments,
    users: Math.max(100, Math.ceil(assignments / 5)),
  };
}

/** Plain undici: page 0, then the other pages with `concurrency` workers; JSON.parse each body. */
async function baseline(baseUrl: string, token: string, concurrency: number, agent: Agent): Promise<Measure> {
  const started = performance.now();
  let bytes = 0;
  let records = 0;
  const fetchPage = async (pageIndex: number) => {
    const response = await agent.request({
      origin: new URL(baseUrl).origin,
      path: `${new URL(baseUrl).pathname}/assignments?pageIndex=${pageIndex}`,
      method: 'GET',
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    const text = await response.body.text();
    bytes += Buffer.byteLength(text);
    const page = JSON.parse(text) as { assignments: unknown[]; totalPages: number };
    records += page.assignments.length;
    return page;
  };
  const first = await fetchPage(0);
  let next = 1;
  const workers = Array.from({ length: concurrency }, async () => {
    while (next < first.totalPages) await fetchPage(next++);
  });
  await Promise.all(workers);
  return { ms: performance.now() - started, pages: first.totalPages, records, bytes };
}

/** The Apple client, rate limit off, same pooled transport settings; counts body bytes on the way. */
async function client(
  baseUrl: string,
  token: string,
  concurrency: number,
  http: AppleHttp,
): Promise<Measure> {
  let bytes = 0;
  const counting: AppleHttp = {
    async request(request) {
      const response = await http.request(request);
      bytes += Buffer.byteLength(response.body);
      return response;
    },
    close: async () => {},
  };
  const apple = createAppleClient({
    baseUrl,
    http: counting,
    rateLimiter: null,
    pageConcurrency: concurrency,
  });
  const started = performance.now();
  let pages = 0;
  let records = 0;
  for await (const page of apple.assignments(token)) {
    pages++;
    records += page.records.length;
  }
  const ms = performance.now() - started;
  await apple.close();
  return { ms, pages, records, bytes };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function rates(m: Measure): string {
  const s = m.ms / 1000;
  return (
    `${m.ms.toFixed(0)} ms, ${(m.pages / s).toFixed(1)} pages/s, ${(m.records / s).toFixed(0)} records/s, ` +
    `${(m.bytes / 1e6 / s).toFixed(1)} MB/s`
  );
}

/** Runs the Apple client benchmark and prints its figures. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      assignments: { type: 'string', default: '200000' },
      'page-size': { type: 'string', default: '549' },
      rounds: { type: 'string', default: '5' },
      'limited-pages': { type: 'string', default: '150' },
      concurrency: { type: 'string', default: '5' },
    },
  });
  const assignments = Number(values.assignments);
  const pageSize = Number(values['page-size']);
  const rounds = Math.max(1, Number(values.rounds));
  const limitedPages = Math.max(1, Number(values['limited-pages']));
  const concurrency = Number(values.concurrency);
  const limitedAssignments = limitedPages * pageSize;

  const sim = await startAppleSim({
    locations: [location('bench', assignments), location('limited', limitedAssignments)],
    pageSize: { assignments: pageSize },
    rateLimit: false,
    seed: 'bench-apple',
  });
  const agent = new Agent({ connections: 16, keepAliveTimeout: 10_000, pipelining: 1 });
  const http = createUndiciHttp();
  try {
    const token = sim.tokenFor('bench');
    process.stdout.write(
      `apple client benchmark — node ${process.version}, ${assignments} assignments, page size ${pageSize}, ` +
        `${concurrency} in flight, ${rounds} rounds (median)\n`,
    );

    // (1) Throughput with the rate limit off. One warm-up of each, then alternate.
    await baseline(sim.baseUrl, token, concurrency, agent);
    await client(sim.baseUrl, token, concurrency, http);
    const base: Measure[] = [];
    const ours: Measure[] = [];
    for (let r = 0; r < rounds; r++) {
      base.push(await baseline(sim.baseUrl, token, concurrency, agent));
      ours.push(await client(sim.baseUrl, token, concurrency, http));
    }
    const pick = (ms: Measure[]) => ms.find((m) => m.ms === median(ms.map((x) => x.ms))) as Measure;
    const b = pick(base);
    const c = pick(ours);
    if (c.records !== assignments || b.records !== assignments) {
      throw new Error(
        `record count mismatch: client ${c.records}, baseline ${b.records}, seeded ${assignments}`,
      );
    }
    process.stdout.write('\n(1) rate limit off, every assignments page fetched and parsed\n');
    process.stdout.write(`  baseline (undici request + JSON.parse): ${rates(b)}\n`);
    process.stdout.write(`  apple client (pager + parse + checks):  ${rates(c)}\n`);
    process.stdout.write(
      `  pages ${c.pages}, records ${c.records}, ${(c.bytes / 1e6).toFixed(1)} MB per pass; ` +
        `client/baseline time ratio ${(c.ms / b.ms).toFixed(2)}x ` +
        `(all rounds: client ${ours.map((m) => m.ms.toFixed(0)).join('/')} ms, ` +
        `baseline ${base.map((m) => m.ms.toFixed(0)).join('/')} ms)\n`,
    );

    // (2) The 15 req/s limit on both sides.
    sim.setRateLimit(15);
    sim.resetRequestCounts();
    const limitedToken = sim.tokenFor('limited');
    const apple = createAppleClient({ baseUrl: sim.baseUrl, http, pageConcurrency: concurrency });
    const limit = await apple.maxRequestPerSecond();
    const started = performance.now();
    let pages = 0;
    let records = 0;
    for await (const page of apple.assignments(limitedToken)) {
      pages++;
      records += page.records.length;
    }
    const elapsed = (performance.now() - started) / 1000;
    await apple.close();
    const requests = sim.requestCounts().limited?.['GET assignments'] ?? 0;
    const floor = requests / limit;
    const windowFloor = (Math.ceil(requests / limit) - 1) * 1.05;
    process.stdout.write(
      `\n(2) rate limit on: simulator ${limit} req/s per location, client limit ${limit} (service/config)\n`,
    );
    process.stdout.write(
      `  ${pages} pages of ${pageSize} (${records} records; (1) had ${Math.ceil(assignments / pageSize)} pages, ` +
        `--limited-pages picks how many here), ` +
        `${requests} requests counted by the simulator (${requests - pages} refused with 429)\n`,
    );
    process.stdout.write(
      `  elapsed ${elapsed.toFixed(2)} s; floor requests/${limit} = ${floor.toFixed(2)} s; ` +
        `ratio ${(elapsed / floor).toFixed(3)}x (target <= 1.1x)\n`,
    );
    process.stdout.write(
      `  note: a sliding window lets the first ${limit} requests go at once, so the earliest possible finish ` +
        `with the client's 1.05 s window is ${windowFloor.toFixed(2)} s + one request's latency\n`,
    );
  } finally {
    await http.close();
    await agent.close();
    await sim.close();
  }
}
