import { isIP } from 'node:net';

/**
 * True for a socket or listening address in 127.0.0.0/8 or ::1, also IPv4-mapped (`::ffff:127.0.0.1`) and
 * bracketed (`[::1]`): who may scrape `/metrics` without a token, and who may take the demo's session.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const bare = address.replace(/^\[|\]$/g, '').replace(/^::ffff:/i, '');
  const family = isIP(bare);
  if (family === 4) return bare.startsWith('127.');
  return family === 6 && new URL(`http://[${bare}]/`).hostname === '[::1]';
}
