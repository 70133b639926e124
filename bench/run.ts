// `npm run bench -- <name> [args]`: runs bench/<name>.ts, whose exported `run(args)` prints figures and
// their ratio to a baseline measured in the same run. Benchmarks are never timed unit tests.
import { readdirSync } from 'node:fs';

const [name, ...args] = process.argv.slice(2);
const available = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();

if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${available.join('|')}> [args]\n`);
  process.exitCode = 2;
} else {
  const module = (await import(`./${name}.ts`)) as { run(args: string[]): Promise<void> };
  await module.run(args);
}
