// After tsc: marks the CLI entry point executable (tsc does not keep file modes) and copies the
// dashboard's static files (not TypeScript, so tsc does not emit them) next to the compiled routes.
import { chmodSync, cpSync, existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(entry)) chmodSync(entry, 0o755);

cpSync(new URL('../src/web/public/', import.meta.url), new URL('../dist/web/public/', import.meta.url), {
  recursive: true,
  filter: (source) => !source.endsWith('tsconfig.json'),
});
