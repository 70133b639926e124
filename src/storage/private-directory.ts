import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p` whose new directories are 0700 whatever the umask (chmod after creation: the umask
 * only removes bits). Answers whether anything was created; an existing directory is left alone.
 */
export function mkdirPrivateSync(path: string): boolean {
  const dir = resolve(path);
  const firstCreated = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (firstCreated === undefined) return false;
  // Every directory from the first created one down to `dir`.
  for (let d = dir; ; d = dirname(d)) {
    chmodSync(d, 0o700);
    if (d === resolve(firstCreated) || d === dirname(d)) break;
  }
  return true;
}
