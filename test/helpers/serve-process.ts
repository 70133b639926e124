import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsxLoader = pathToFileURL(`${root}node_modules/tsx/dist/loader.mjs`).href;
const mainScript = `${root}src/cli/main.ts`;

/** The environment of the test process without any VPPD_* setting, so children see only what a test sets. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('VPPD_')) env[key] = value;
  return { ...env, ...extra };
}

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ExitedProcess {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `vppd <args>` from source until it exits (for start-up failures). */
export function runUntilExit(args: readonly string[], options: { env: NodeJS.ProcessEnv; cwd: string }) {
  return new Promise<ExitedProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, mainScript, ...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vppd ${args.join(' ')} did not exit; stdout: ${stdout} stderr: ${stderr}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Quotes one word for `sh -c`. */
const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Starts `vppd serve <args>` from source as a real process and waits for its listening line.
 * `shell` runs first in `sh -c` (e.g. `umask 022; ulimit -n 1024`), then `exec`s vppd.
 */
export function startServeProcess(
  args: readonly string[],
  /** `startupMs`: how long to wait for the listening line (default 20 s). */
  options: { env: NodeJS.ProcessEnv; cwd: string; shell?: string; startupMs?: number },
): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, '--import', tsxLoader, mainScript, 'serve', ...args];
    const child =
      options.shell === undefined
        ? spawn(command[0] as string, command.slice(1), {
            cwd: options.cwd,
            env: options.env,
            stdio: ['ignore', 'pipe', 'pipe'],
          })
        : spawn('sh', ['-c', `${options.shell}; exec ${command.map(shellQuote).join(' ')}`], {
            cwd: options.cwd,
            env: options.env,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    let stdout = '';
    let stderr = '';
    let started = false;
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vppd serve did not start; stdout: ${stdout} stderr: ${stderr}`));
    }, options.startupMs ?? 20_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const match = /^vppd listening on (\S+)/m.exec(stdout);
      if (match?.[1] && !started) {
        started = true;
        clearTimeout(timer);
        resolve({
          url: match[1],
          child,
          stdout: () => stdout,
          stderr: () => stderr,
          async stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    child.on('exit', (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`vppd serve exited with ${code}; stdout: ${stdout} stderr: ${stderr}`));
      }
    });
  });
}
