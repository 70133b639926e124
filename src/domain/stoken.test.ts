import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVppdError } from './errors.js';
import { decodeSToken, encodeSToken, formatAppleDateTime, parseAppleDateTime } from './stoken.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
const secret = 'VGhpcy1pcy1hLXNlY3JldC10b2tlbi12YWx1ZQ';

describe('decodeSToken', () => {
  it('decodes a real-format file with a +HHMM offset and trims whitespace', () => {
    const content = b64({ token: secret, expDate: '2030-11-08T22:33:22+0000', orgName: 'Contoso Schools' });
    const decoded = decodeSToken(`\n  ${content}\r\n`);
    expect(decoded).toEqual({
      content,
      token: secret,
      expDate: new Date('2030-11-08T22:33:22Z'),
      orgName: 'Contoso Schools',
    });
  });

  it('decodes the file text base64-encoded once more (as published create scripts send it)', () => {
    const content = b64({ token: secret, expDate: '2030-11-08T22:33:22+0000', orgName: 'Contoso Schools' });
    const twice = Buffer.from(`${content}\r\n`, 'utf8').toString('base64');
    expect(decodeSToken(twice)).toEqual({
      content,
      token: secret,
      expDate: new Date('2030-11-08T22:33:22Z'),
      orgName: 'Contoso Schools',
    });
  });

  it('keeps the errors of the first decoding when the text encoded again is no sToken either', () => {
    const once = b64({ token: 't', orgName: 'o' });
    const twice = Buffer.from(once, 'utf8').toString('base64');
    const thrice = Buffer.from(twice, 'utf8').toString('base64');
    expect(() => decodeSToken(twice)).toThrow(/not JSON/);
    expect(() => decodeSToken(thrice)).toThrow(/not JSON/);
    expect(() => decodeSToken(Buffer.from('aGVsbG8=').toString('base64'))).toThrow(/not JSON/);
  });

  it.each([
    ['2014-08-15T18:13:52-0700', '2014-08-16T01:13:52.000Z'],
    ['2014-08-15T18:13:52-07:00', '2014-08-16T01:13:52.000Z'],
    ['2014-08-15T18:13:52Z', '2014-08-15T18:13:52.000Z'],
    ['2014-08-15T18:13:52.250+0530', '2014-08-15T12:43:52.250Z'],
    ['2024-02-29T00:00:00+0000', '2024-02-29T00:00:00.000Z'],
  ])('accepts expDate %s', (expDate, iso) => {
    expect(decodeSToken(b64({ token: 't', expDate, orgName: 'o' })).expDate.toISOString()).toBe(iso);
  });

  it.each([
    ['', 'it is empty'],
    ['   \n', 'it is empty'],
    ['not base64!!', 'not base64'],
    [Buffer.from('hello').toString('base64'), 'not JSON'],
    [b64([1, 2]), 'not a JSON object'],
    [b64({ expDate: '2030-01-01T00:00:00Z', orgName: 'o' }), 'token missing'],
    [b64({ token: 't', orgName: 'o' }), 'expDate missing'],
    [b64({ token: 't', expDate: 'tomorrow', orgName: 'o' }), 'expDate is not a date'],
    [b64({ token: 't', expDate: '2023-02-29T00:00:00+0000', orgName: 'o' }), 'expDate is not a date'],
    [b64({ token: 't', expDate: '2023-13-01T00:00:00+0000', orgName: 'o' }), 'expDate is not a date'],
    [b64({ token: 't', expDate: '2023-01-01T00:00:00+2500', orgName: 'o' }), 'expDate is not a date'],
    [b64({ token: 't', expDate: '2030-01-01T00:00:00Z' }), 'orgName missing'],
    [b64({ token: 't', expDate: '2030-01-01T00:00:00Z', orgName: '  ' }), 'orgName missing'],
  ])('rejects %j saying "%s"', (input, problem) => {
    expect(() => decodeSToken(input)).toThrowError(problem);
  });

  it('rejects non-strings and oversized input', () => {
    expect(() => decodeSToken(42)).toThrowError(/must be a string/);
    expect(() => decodeSToken('A'.repeat(20_000))).toThrowError(/longer than/);
  });

  it('never echoes the secret in its errors', () => {
    const bad = [
      b64({ token: secret, expDate: 'nope', orgName: 'o' }),
      b64({ token: secret, expDate: '2030-01-01T00:00:00Z' }),
      `${secret}!`,
    ];
    for (const input of bad) {
      try {
        decodeSToken(input);
        expect.unreachable();
      } catch (error) {
        expect(String(error)).not.toContain(secret);
        expect(JSON.stringify((error as { details: unknown }).details)).not.toContain(secret);
      }
    }
  });

  it('arbitrary input only ever yields the typed error (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.base64String(),
          fc.jsonValue().map((v) => b64(v)),
        ),
        (input) => {
          try {
            const decoded = decodeSToken(input);
            expect(decoded.expDate).toBeInstanceOf(Date);
          } catch (error) {
            expect(isVppdError(error, 'invalidSToken')).toBe(true);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('round-trips what encodeSToken writes (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((s) => s.trim().length > 0),
        fc.string({ minLength: 1 }).filter((s) => s.trim().length > 0),
        fc.date({
          min: new Date('2000-01-01T00:00:00Z'),
          max: new Date('2100-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        (token, orgName, date) => {
          const expDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
          const decoded = decodeSToken(encodeSToken({ token, expDate, orgName }));
          expect(decoded.token).toBe(token);
          expect(decoded.orgName).toBe(orgName.trim());
          expect(decoded.expDate.getTime()).toBe(expDate.getTime());
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('parseAppleDateTime', () => {
  it('handles years below 100 and formats like Apple', () => {
    expect(parseAppleDateTime('0001-01-01T00:00:00Z')?.toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(parseAppleDateTime('2000-02-29T00:00:00Z')).toBeDefined();
    expect(parseAppleDateTime('1900-02-29T00:00:00Z')).toBeUndefined();
    expect(formatAppleDateTime(new Date('2030-11-08T22:33:22.123Z'))).toBe('2030-11-08T22:33:22+0000');
  });
});
