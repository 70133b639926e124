#!/usr/bin/env node
import { runCli } from './program.js';

// The binary: parse argv, run, and turn the outcome into an exit code. Nothing else lives here.
process.exitCode = await runCli(process.argv);
