import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { errors } from '../domain/errors.js';

/** An encrypted secret as stored: base64 ciphertext, nonce and authentication tag. */
export interface SealedSecret {
  readonly ciphertext: string;
  readonly iv: string;
  readonly tag: string;
}

/** Encrypts sTokens at rest and fingerprints them; holds derived keys only. */
export interface TokenCipher {
  /** AES-256-GCM with a fresh nonce; `context` (tenant and token id) is bound as associated data. */
  seal(secret: string, context: string): SealedSecret;
  /** Decrypts and authenticates; a wrong key, context or tampered row throws. */
  open(sealed: SealedSecret, context: string): string;
  /** Keyed HMAC-SHA256 (hex) for duplicate checks: equal inputs match, nothing is learnable without the key. */
  fingerprint(secret: string): string;
}

const ivBytes = 12;

/**
 * Builds the cipher from the 32-byte `VPPD_ENCRYPTION_KEY`. Two independent keys are derived with
 * HKDF-SHA256 so the fingerprint never reuses the encryption key.
 */
export function createTokenCipher(
  masterKey: Uint8Array,
  random: (n: number) => Buffer = randomBytes,
): TokenCipher {
  if (masterKey.length !== 32) throw errors.config('VPPD_ENCRYPTION_KEY', 'must be 32 bytes, base64');
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', masterKey, 'vppd', info, 32));
  const encryptionKey = derive('vppd sToken encryption v1');
  const fingerprintKey = derive('vppd sToken fingerprint v1');
  return {
    seal(secret, context) {
      const iv = random(ivBytes);
      const cipher = createCipheriv('aes-256-gcm', encryptionKey, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
      return {
        ciphertext: ciphertext.toString('base64'),
        iv: iv.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
      };
    },
    open(sealed, context) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', encryptionKey, Buffer.from(sealed.iv, 'base64'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
        const plain = Buffer.concat([
          decipher.update(Buffer.from(sealed.ciphertext, 'base64')),
          decipher.final(),
        ]);
        return plain.toString('utf8');
      } catch (error) {
        // Never include the ciphertext or key material; say what a human can act on.
        throw errors.internal(
          'A stored VPP token cannot be decrypted: VPPD_ENCRYPTION_KEY differs from the one it was stored with, or the row was altered.',
          error,
        );
      }
    },
    fingerprint(secret) {
      return createHmac('sha256', fingerprintKey).update(secret, 'utf8').digest('hex');
    },
  };
}
