import { appleFailureError } from './apple-failure.js';
import type { ApplePage } from './apple-types.js';

/** Fetches one page; must honour `signal` so pages the stream no longer needs are dropped. */
export type FetchPage<T> = (pageIndex: number, signal: AbortSignal) => Promise<ApplePage<T>>;

/** Apple's hard limit on parallel requests. See docs/apple.md, "Paging". */
export const maxPagesInFlight = 5;

export interface PageStreamOptions {
  /** Pages fetched at once, 1–5. */
  readonly concurrency?: number;
  /**
   * Pages fetched or buffered ahead of the one the consumer waits for (at least `concurrency`);
   * bounds memory whatever the number of pages. Default: twice the concurrency.
   */
  readonly lookahead?: number;
  /**
   * Pages the caller expects the listing to have (an earlier read's `totalPages`): pages 1 up to it are
   * requested alongside page 0, within `concurrency`, rather than once page 0 told how many there are.
   * A guess too high costs requests whose answers are dropped (pages past the end); too low, the wait.
   */
  readonly expectedPages?: number;
  readonly signal?: AbortSignal;
  /** Names the call in a `snapshotMoved` error, e.g. `GET /assignments`. */
  readonly endpoint?: string;
  readonly locationKey?: string;
}

/** Why a stream's pages still in flight are dropped when it ends: read by nobody, made once. */
const streamEnded = new Error('the page stream ended');

type Settled<T> =
  | { readonly ok: true; readonly page: ApplePage<T> }
  | { readonly ok: false; readonly error: unknown };

/**
 * Streams every page of a paged Apple endpoint in index order, fetching up to `concurrency` pages in
 * parallel within a bounded look-ahead window. Page 0 is read first: its `versionId` is the snapshot,
 * and a later page with another `versionId` fails the stream with kind `snapshotMoved` (the caller
 * restarts or fails the sync; it never commits a mix). `totalPages` may change while paging: the
 * latest value only steers how far ahead to fetch, while the end is the first page without
 * `nextPageIndex`; pages fetched beyond that end, and their errors, are discarded.
 */
export async function* streamPages<T>(
  fetchPage: FetchPage<T>,
  options: PageStreamOptions = {},
): AsyncGenerator<ApplePage<T>, void, undefined> {
  const concurrency = Math.min(maxPagesInFlight, Math.max(1, Math.floor(options.concurrency ?? 5)));
  const lookahead = Math.max(concurrency, Math.floor(options.lookahead ?? concurrency * 2));
  const endpoint = options.endpoint ?? 'paged call';
  const controller = new AbortController();
  const outer = options.signal;
  const onOuterAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) throw outer.reason;
  outer?.addEventListener('abort', onOuterAbort, { once: true });

  const slots = new Map<number, Promise<Settled<T>>>();
  let inFlight = 0;
  let nextToLaunch = 1;
  let wanted = 0; // index the consumer waits for next
  let knownTotal = Math.max(1, Math.floor(options.expectedPages ?? 1));
  let finished = false;

  const launch = (index: number): Promise<Settled<T>> => {
    inFlight++;
    const settled = fetchPage(index, controller.signal).then(
      (page): Settled<T> => {
        knownTotal = page.totalPages;
        return { ok: true, page };
      },
      (error: unknown): Settled<T> => ({ ok: false, error }),
    );
    const slot = settled.then((result) => {
      inFlight--;
      fill();
      return result;
    });
    slots.set(index, slot);
    return slot;
  };

  const fill = (): void => {
    while (
      !finished &&
      !controller.signal.aborted &&
      inFlight < concurrency &&
      nextToLaunch < knownTotal &&
      nextToLaunch < wanted + lookahead
    ) {
      if (!slots.has(nextToLaunch)) launch(nextToLaunch);
      nextToLaunch++;
    }
  };

  try {
    const firstSlot = launch(0);
    // Pages expected after the first are requested with it.
    fill();
    const first = await firstSlot;
    slots.delete(0);
    if (!first.ok) throw first.error;
    const versionId = first.page.versionId;
    let current = first.page;
    let index = 0;
    for (;;) {
      wanted = index + 1;
      if (current.nextPageIndex === undefined) finished = true;
      fill();
      yield current;
      if (finished) return;
      index++;
      wanted = index;
      const slot = slots.get(index) ?? launch(index);
      if (nextToLaunch <= index) nextToLaunch = index + 1;
      const result = await slot;
      slots.delete(index);
      if (!result.ok) throw result.error;
      if (result.page.versionId !== versionId) {
        throw appleFailureError({
          failure: {
            kind: 'snapshotMoved',
            message: `Apple's data changed while paging: page ${index} has versionId '${result.page.versionId}', page 0 had '${versionId}'`,
          },
          endpoint,
          attempts: 1,
          pageIndex: index,
          ...(options.locationKey === undefined ? {} : { locationKey: options.locationKey }),
        });
      }
      current = result.page;
    }
  } finally {
    finished = true;
    outer?.removeEventListener('abort', onOuterAbort);
    // Drops the pages still in flight. With a reason of its own: an abort without one builds a
    // DOMException and its stack on every stream's end (0.6 ms per delta sync, profiled).
    controller.abort(streamEnded);
    // Wait for dropped requests to wind down so no work outlives the stream.
    await Promise.all(slots.values());
  }
}
