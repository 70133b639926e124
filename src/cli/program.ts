import { Command, CommanderError } from 'commander';
import { isVppdError } from '../domain/errors.js';
import { registerAppleSimCommand } from './apple-sim-command.js';
import { registerAuthCommand } from './auth-command.js';
import { CliExit } from './cli-exit.js';
import { registerDbCommand } from './db-command.js';
import { registerEnumsCommand } from './enums-command.js';
import type { CliIo } from './io.js';
import { processIo } from './io.js';
import { registerLicensesCommand } from './licenses-command.js';
import { registerMigrateCommand } from './migrate-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerTokensCommand } from './tokens-command.js';

/** Builds the `vppd` command tree. Each subcommand lives in its own `*-command.ts` file. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('vppd')
    .description('Apple VPP token sync service speaking Microsoft Graph’s vppToken API')
    .version('0.1.0')
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
    })
    .exitOverride();
  registerEnumsCommand(program, io);
  registerAppleSimCommand(program, io);
  registerServeCommand(program, io);
  registerMigrateCommand(program, io);
  registerTokensCommand(program, io, { isTty: io === processIo && process.stdout.isTTY === true });
  registerAuthCommand(program, io);
  registerDbCommand(program, io);
  registerLicensesCommand(program, io);
  return program;
}

/** Runs the CLI and returns the process exit code; errors become one line on stderr. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its one line (or help/version, which exit 0).
      return error.exitCode;
    }
    if (error instanceof CliExit) return error.exitCode;
    const message = isVppdError(error) || error instanceof Error ? error.message : String(error);
    io.stderr(`vppd: ${message}\n`);
    return 1;
  }
}
