import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appleFailureOf } from './apple-failure.js';
import type { ApplePage } from './apple-types.js';
import { type FetchPage, streamPages } from './page-stream.js';

interface Book {
  /** What page i says about the whole result; lets a test change totalPages/versionId mid-stream. */
  total: (index: number) => number;
  last: number;
  version?: (index: number) => string;
  delay?: (index: number) => number;
  fail?: (index: number) => Error | undefined;
}

/** An in-memory paged endpoint with instrumentation of what was asked and how much ran at once. */
function pagedSource(book: Book) {
  const stats = { inFlight: 0, maxInFlight: 0, requested: [] as number[], aborted: 0 };
  const fetchPage: FetchPage<number> = async (index, signal) => {
    stats.requested.push(index);
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          clearTimeout(timer);
          stats.aborted++;
          reject(signal.reason);
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, book.delay?.(index) ?? 0);
        signal.addEventListener('abort', onAbort, { once: true });
      });
      const error = index > book.last ? new Error(`bad page index ${index}`) : book.fail?.(index);
      if (error) throw error;
      const page: ApplePage<number> = {
        currentPageIndex: index,
        nextPageIndex: index < book.last ? index + 1 : undefined,
        totalPages: book.total(index),
        versionId: book.version?.(index) ?? 'v1',
        size: 1,
        records: [index],
        uId: 'u',
        tokenExpirationDate: undefined,
      };
      return page;
    } finally {
      stats.inFlight--;
    }
  };
  return { fetchPage, stats };
}

async function collect(pages: AsyncIterable<ApplePage<number>>): Promise<number[]> {
  const out: number[] = [];
  for await (const page of pages) out.push(...page.records);
  return out;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('streamPages', () => {
  it('yields every page in order with at most `concurrency` requests in flight', async () => {
    const { fetchPage, stats } = pagedSource({ total: () => 40, last: 39, delay: (i) => (i * 7) % 5 });
    expect(await collect(streamPages(fetchPage, { concurrency: 5 }))).toEqual(range(40));
    expect(stats.maxInFlight).toBe(5);
    expect([...stats.requested].sort((a, b) => a - b)).toEqual(range(40));
  });

  it('clamps concurrency to 1–5', async () => {
    const many = pagedSource({ total: () => 30, last: 29, delay: () => 1 });
    await collect(streamPages(many.fetchPage, { concurrency: 50 }));
    expect(many.stats.maxInFlight).toBe(5);
    const one = pagedSource({ total: () => 10, last: 9, delay: () => 1 });
    await collect(streamPages(one.fetchPage, { concurrency: 0 }));
    expect(one.stats.maxInFlight).toBe(1);
  });

  it('fetches no further ahead than the look-ahead window while the consumer is slow', async () => {
    const { fetchPage, stats } = pagedSource({ total: () => 50, last: 49 });
    let maxAhead = 0;
    let consumed = 0;
    for await (const page of streamPages(fetchPage, { concurrency: 3, lookahead: 6 })) {
      consumed = page.currentPageIndex;
      await new Promise((r) => setTimeout(r, 2));
      maxAhead = Math.max(maxAhead, Math.max(...stats.requested) - consumed);
    }
    expect(consumed).toBe(49);
    expect(maxAhead).toBeLessThanOrEqual(6);
  });

  it('follows nextPageIndex when totalPages grows while paging', async () => {
    const { fetchPage } = pagedSource({ total: (i) => (i === 0 ? 3 : 8), last: 7 });
    expect(await collect(streamPages(fetchPage, { concurrency: 5 }))).toEqual(range(8));
  });

  it('ends at the page without nextPageIndex when totalPages shrinks, discarding pages beyond it', async () => {
    const { fetchPage, stats } = pagedSource({ total: (i) => (i === 0 ? 12 : 4), last: 3 });
    expect(await collect(streamPages(fetchPage, { concurrency: 5 }))).toEqual(range(4));
    expect(stats.requested.some((i) => i > 3)).toBe(true);
  });

  it('requests the expected pages with page 0, not after it answered', async () => {
    const order = async (expectedPages?: number) => {
      const { fetchPage } = pagedSource({ total: () => 3, last: 2, delay: (i) => (i === 0 ? 10 : 0) });
      const log: string[] = [];
      const logged: FetchPage<number> = async (index, signal) => {
        log.push(`ask ${index}`);
        const page = await fetchPage(index, signal);
        log.push(`got ${index}`);
        return page;
      };
      const pages = streamPages(logged, {
        concurrency: 3,
        ...(expectedPages === undefined ? {} : { expectedPages }),
      });
      expect(await collect(pages)).toEqual(range(3));
      return log;
    };
    // Pages 1 and 2 are asked for before page 0 answers (it answers last), within the concurrency.
    expect((await order(3)).slice(0, 3)).toEqual(['ask 0', 'ask 1', 'ask 2']);
    // Without the hint, page 1 waits for page 0.
    expect((await order()).slice(0, 3)).toEqual(['ask 0', 'got 0', 'ask 1']);
  });

  it('an expectation too high costs requests past the end, whose answers (errors) are dropped', async () => {
    const { fetchPage, stats } = pagedSource({ total: () => 2, last: 1, delay: (i) => (i === 0 ? 5 : 0) });
    expect(await collect(streamPages(fetchPage, { concurrency: 3, expectedPages: 6 }))).toEqual(range(2));
    expect(stats.requested.slice(0, 3)).toEqual([0, 1, 2]);
    expect(stats.maxInFlight).toBeLessThanOrEqual(3);
  });

  it('fails with snapshotMoved when a later page has another versionId', async () => {
    const { fetchPage } = pagedSource({ total: () => 6, last: 5, version: (i) => (i < 4 ? 'v1' : 'v2') });
    const seen: number[] = [];
    const run = async () => {
      for await (const page of streamPages(fetchPage, { endpoint: 'GET /assignments' }))
        seen.push(...page.records);
    };
    const error = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(appleFailureOf(error)).toMatchObject({ kind: 'snapshotMoved' });
    expect(String(error)).toContain('page 4');
    expect(seen).toEqual([0, 1, 2, 3]);
  });

  it('propagates the error of a needed page and stops the others', async () => {
    const { fetchPage, stats } = pagedSource({
      total: () => 30,
      last: 29,
      delay: (i) => (i === 2 ? 1 : 20),
      fail: (i) => (i === 2 ? new Error('page 2 broke') : undefined),
    });
    await expect(collect(streamPages(fetchPage, { concurrency: 5 }))).rejects.toThrow('page 2 broke');
    expect(stats.inFlight).toBe(0);
    expect(stats.aborted).toBeGreaterThan(0);
  });

  it('aborts in-flight requests when the consumer stops early and leaves nothing running', async () => {
    const { fetchPage, stats } = pagedSource({ total: () => 100, last: 99, delay: () => 5 });
    for await (const page of streamPages(fetchPage, { concurrency: 4 })) {
      if (page.currentPageIndex === 3) break;
    }
    expect(stats.inFlight).toBe(0);
    expect(stats.requested.length).toBeLessThan(20);
  });

  it('rejects with the caller abort reason', async () => {
    const { fetchPage } = pagedSource({ total: () => 100, last: 99, delay: () => 5 });
    const controller = new AbortController();
    const run = collect(streamPages(fetchPage, { signal: controller.signal }));
    setTimeout(() => controller.abort(new Error('shutting down')), 12);
    await expect(run).rejects.toThrow('shutting down');
  });

  it('returns exactly the pages for any page count, concurrency and timing (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 10 }),
        fc.option(fc.integer({ min: 0, max: 70 }), { nil: undefined }),
        async (pages, concurrency, delays, expectedPages) => {
          const { fetchPage, stats } = pagedSource({
            total: () => pages,
            last: pages - 1,
            delay: (i) => delays[i % delays.length] as number,
          });
          expect(
            await collect(
              streamPages(fetchPage, {
                concurrency,
                ...(expectedPages === undefined ? {} : { expectedPages }),
              }),
            ),
          ).toEqual(range(pages));
          expect(stats.maxInFlight).toBeLessThanOrEqual(concurrency);
        },
      ),
      { numRuns: 40 },
    );
  });
});
