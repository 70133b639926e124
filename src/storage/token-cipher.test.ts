import { describe, expect, it } from 'vitest';
import { isVppdError } from '../domain/errors.js';
import { createTokenCipher } from './token-cipher.js';

const key = Buffer.alloc(32, 1);
const secret = 'eyJ0b2tlbiI6InNlY3JldCJ9';

describe('createTokenCipher', () => {
  it('round-trips and uses a fresh nonce each time', () => {
    const cipher = createTokenCipher(key);
    const a = cipher.seal(secret, 'tenant:1');
    const b = cipher.seal(secret, 'tenant:1');
    expect(a.iv).not.toBe(b.iv);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(Buffer.from(a.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(a.tag, 'base64')).toHaveLength(16);
    expect(Buffer.from(a.ciphertext, 'base64').toString('utf8')).not.toContain('token');
    expect(cipher.open(a, 'tenant:1')).toBe(secret);
  });

  it('refuses another context, another key or a tampered ciphertext, without leaking', () => {
    const cipher = createTokenCipher(key);
    const sealed = cipher.seal(secret, 'tenant:1');
    const attempts = [
      () => cipher.open(sealed, 'tenant:2'),
      () => createTokenCipher(Buffer.alloc(32, 2)).open(sealed, 'tenant:1'),
      () => {
        const bytes = Buffer.from(sealed.ciphertext, 'base64');
        bytes[0] = (bytes[0] ?? 0) ^ 1;
        return cipher.open({ ...sealed, ciphertext: bytes.toString('base64') }, 'tenant:1');
      },
    ];
    for (const attempt of attempts) {
      try {
        attempt();
        expect.unreachable('open must fail');
      } catch (error) {
        expect(isVppdError(error, 'internal')).toBe(true);
        expect((error as Error).message).toContain('VPPD_ENCRYPTION_KEY');
        expect((error as Error).message).not.toContain(secret);
      }
    }
  });

  it('fingerprints deterministically per key, not as a plain hash', async () => {
    const cipher = createTokenCipher(key);
    const other = createTokenCipher(Buffer.alloc(32, 2));
    const { createHash } = await import('node:crypto');
    expect(cipher.fingerprint(secret)).toBe(cipher.fingerprint(secret));
    expect(cipher.fingerprint(secret)).not.toBe(cipher.fingerprint(`${secret}x`));
    expect(cipher.fingerprint(secret)).not.toBe(other.fingerprint(secret));
    expect(cipher.fingerprint(secret)).not.toBe(createHash('sha256').update(secret).digest('hex'));
  });

  it('rejects a key that is not 32 bytes', () => {
    expect(() => createTokenCipher(Buffer.alloc(16))).toThrow(/VPPD_ENCRYPTION_KEY: must be 32 bytes/);
  });
});
