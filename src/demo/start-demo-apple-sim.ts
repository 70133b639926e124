import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AppleSim, startAppleSim } from '../apple-sim/apple-sim.js';
import { errors } from '../domain/errors.js';
import { mkdirPrivateSync } from '../storage/private-directory.js';
import { demoLargeLatencyMs, demoLargeLocationId, demoSimLocations, demoSimSeed } from './demo-scenario.js';

/** The file in the data directory that pins the demo simulator's seed and expiry anchor. */
export const demoSimStateFileName = 'demo-apple-sim.json';

export interface StartDemoAppleSimOptions {
  /** The demo's data directory (`./data`): holds {@link demoSimStateFileName}. */
  readonly dataDir: string;
  readonly clock?: () => Date;
}

/**
 * Starts the demo's in-process Apple simulator on a free loopback port: seed `vppd-demo`, token expiry
 * anchored to the demo's first start (kept in `<dataDir>/demo-apple-sim.json`, so restarted demos get
 * the same token files), and latency on the large location so its sync is visibly `inProgress`.
 */
export async function startDemoAppleSim(options: StartDemoAppleSimOptions): Promise<AppleSim> {
  const clock = options.clock ?? (() => new Date());
  const anchor = await loadAnchor(options.dataDir, clock());
  const sim = await startAppleSim({
    port: 0,
    host: '127.0.0.1',
    seed: demoSimSeed,
    locations: demoSimLocations(anchor),
    clock,
  });
  sim.faults.latency(demoLargeLocationId, demoLargeLatencyMs);
  return sim;
}

async function loadAnchor(dataDir: string, now: Date): Promise<Date> {
  const file = join(dataDir, demoSimStateFileName);
  try {
    const stored = JSON.parse(await readFile(file, 'utf8')) as { anchor?: unknown };
    const anchor = typeof stored.anchor === 'string' ? new Date(stored.anchor) : undefined;
    if (anchor !== undefined && !Number.isNaN(anchor.getTime())) return anchor;
    throw new Error('no anchor');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw errors.config('--demo', `cannot read ${file}: delete it (and the demo database) to start over`);
    }
  }
  // Private whatever the umask: the directory also holds the demo's database and secrets.
  mkdirPrivateSync(dataDir);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(
    temporary,
    `${JSON.stringify({ seed: demoSimSeed, anchor: now.toISOString() }, null, 2)}\n`,
  );
  await rename(temporary, file);
  return now;
}
