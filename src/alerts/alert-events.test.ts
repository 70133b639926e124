import { describe, expect, it } from 'vitest';
import { expiryThresholdOf, signAlertBody, verifyAlertSignature } from './alert-events.js';

const day = 86_400_000;
const now = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number) => new Date(now.getTime() + ms);

describe('expiryThresholdOf', () => {
  it('answers the tightest threshold the token is inside of', () => {
    expect(expiryThresholdOf(at(31 * day), now)).toBeUndefined();
    expect(expiryThresholdOf(at(30 * day), now)).toBe(30);
    expect(expiryThresholdOf(at(15 * day), now)).toBe(30);
    expect(expiryThresholdOf(at(14 * day), now)).toBe(14);
    expect(expiryThresholdOf(at(5 * day), now)).toBe(5);
    expect(expiryThresholdOf(at(1), now)).toBe(5);
    expect(expiryThresholdOf(at(0), now)).toBeUndefined();
    expect(expiryThresholdOf(at(-day), now)).toBeUndefined();
  });
});

describe('alert signatures', () => {
  it('is the hex HMAC-SHA256 of the body and verifies only the same body and secret', () => {
    const body = '{"text":"hello"}';
    // Known answer computed independently: printf '{"text":"hello"}' | openssl dgst -sha256 -hmac secret
    expect(signAlertBody(body, 'secret')).toBe(
      'sha256=3b3b2696b97f30066225d75f057c5960f6518d7a42d500f01f4704290c7fdf8a',
    );
    const signature = signAlertBody(body, 'secret');
    expect(verifyAlertSignature(body, 'secret', signature)).toBe(true);
    expect(verifyAlertSignature(`${body} `, 'secret', signature)).toBe(false);
    expect(verifyAlertSignature(body, 'other', signature)).toBe(false);
    expect(verifyAlertSignature(body, 'secret', 'sha256=00')).toBe(false);
  });
});
