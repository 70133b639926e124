import { type DestinationStream, pino } from 'pino';

/**
 * Where vppd's log lines go: stdout through an asynchronous writer whose buffer is bounded.
 *
 * pino's default destination buffers every line in memory until stdout takes it. When stdout is a
 * pipe drained slower than vppd writes (a log shipper, a terminal, `| tee`), that buffer grows
 * without limit: measured with `npm run bench -- soak` (200 clients, stdout read at 1 MB/s, level
 * info) the heap after GC grew 25 -> 146 MB in 90 s and RSS 161 -> 326 MB, with no plateau; with
 * stdout read at full speed the heap stayed at ~27 MB. Here lines that would take the buffer past
 * {@link maxLogBufferBytes} are dropped instead, counted in `vppd_log_lines_dropped_total`, and
 * reported on stderr (at most once a minute).
 */

/** Most bytes of log lines held while stdout catches up (about 10,000 request lines). */
export const maxLogBufferBytes = 4 * 1024 * 1024;

let dropped = 0;
let lastReportAt = Number.NEGATIVE_INFINITY;

/** Log lines dropped by every bounded destination of this process since it started. */
export function droppedLogLines(): number {
  return dropped;
}

function countLines(data: unknown): number {
  const text = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('latin1') : '';
  let lines = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines += 1;
  return Math.max(1, lines);
}

export interface LogDestinationOptions {
  /** File descriptor written to (default 1, stdout). */
  readonly fd?: number;
  readonly maxBufferBytes?: number;
  /** Where the "dropping" notice goes (default stderr). */
  readonly report?: (message: string) => void;
}

/** An asynchronous destination on `fd` that drops (and counts) lines past its buffer limit. */
export function createLogDestination(options: LogDestinationOptions = {}): DestinationStream {
  const stream = pino.destination({
    dest: options.fd ?? 1,
    sync: false,
    minLength: 0,
    maxLength: options.maxBufferBytes ?? maxLogBufferBytes,
  });
  const report = options.report ?? ((message: string) => process.stderr.write(message));
  stream.on('drop', (data: unknown) => {
    dropped += countLines(data);
    const now = Date.now();
    if (now - lastReportAt >= 60_000) {
      lastReportAt = now;
      report(
        `vppd: stdout is not keeping up with the log; dropping lines (${dropped} so far, see vppd_log_lines_dropped_total)\n`,
      );
    }
  });
  return stream;
}
