import { type Command, CommanderError } from 'commander';
import type { CliIo } from './io.js';

/** Thrown by a command to end with a given exit code after it printed what it had to say. */
export class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** Usage errors (bad flags, missing arguments) exit 2; help and version stay 0. */
export function usageExitCodes(command: Command): Command {
  return command.exitOverride((error) => {
    throw error.exitCode === 0 ? error : new CommanderError(2, error.code, error.message);
  });
}

/** Prints one usage line and ends with exit code 2. */
export function usageError(io: CliIo, message: string): never {
  io.stderr(`vppd: ${message}\n`);
  throw new CliExit(2);
}
