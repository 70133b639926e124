import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeVppTokenFile, formatAppleDate, innerTokenFor, readBearer } from './sim-token.js';

describe('sim tokens', () => {
  it('formats dates like Apple: UTC with +0000, no colon, no fraction', () => {
    expect(formatAppleDate(new Date('2027-11-08T22:33:22.789Z'))).toBe('2027-11-08T22:33:22+0000');
  });

  it('derives the inner token from seed, location and index only', () => {
    expect(innerTokenFor('s', 'a', 0)).toBe(innerTokenFor('s', 'a', 0));
    expect(innerTokenFor('s', 'a', 0)).not.toBe(innerTokenFor('s', 'a', 1));
    expect(innerTokenFor('s', 'a', 0)).not.toBe(innerTokenFor('t', 'a', 0));
    expect(innerTokenFor('s', 'a', 0)).not.toBe(innerTokenFor('s', 'b', 0));
  });

  it('reads back the inner token of any encoded file from a Bearer header', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), (token, orgName) => {
        const content = encodeVppTokenFile({ token, expDate: '2030-01-01T00:00:00+0000', orgName });
        expect(readBearer(`Bearer ${content}`)).toEqual({ ok: true, token });
      }),
    );
  });

  it('treats anything else as malformed', () => {
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Basic abc',
      'Bearer %%%',
      `Bearer ${btoa('[1]')}`,
      `Bearer ${btoa('{"token":1}')}`,
    ]) {
      expect(readBearer(header).ok).toBe(false);
    }
  });
});
