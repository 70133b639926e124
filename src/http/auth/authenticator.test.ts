import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { AuthConfig } from '../../config.js';
import { isVppdError } from '../../domain/errors.js';
import { createAuthenticator, createVerifiedTokenCache } from './authenticator.js';

const secret = new TextEncoder().encode('authenticator-test-secret-of-at-least-32-bytes');
const config: AuthConfig = { kind: 'hs256', secret };
const start = new Date('2026-03-01T12:00:00.000Z');
const tid = 'aaaaaaaa-1111-4111-8111-111111111111';

async function sign(claims: Record<string, unknown>, key: Uint8Array = secret): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

function setup(options: { ttlMs?: number; maxEntries?: number } = {}) {
  let now = start.getTime();
  const verifiedTokens = createVerifiedTokenCache(options);
  const authenticator = createAuthenticator(config, { clock: () => new Date(now), verifiedTokens });
  return {
    authenticator,
    verifiedTokens,
    set: (date: Date) => {
      now = date.getTime();
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(isVppdError(error, 'unauthenticated')).toBe(true);
    return error as Error;
  }
  return expect.unreachable('authentication must fail');
}

describe('createAuthenticator with remembered verifications', () => {
  it('answers a repeated bearer with the same principal from one verification', async () => {
    const { authenticator, verifiedTokens } = setup();
    const jwt = await sign({
      tid,
      roles: ['DeviceManagementServiceConfig.Read.All'],
      exp: seconds(start) + 600,
    });
    const first = await authenticator.authenticate(`Bearer ${jwt}`);
    expect(first.tenantId).toBe(tid);
    expect([...first.permissions]).toEqual(['DeviceManagementServiceConfig.Read.All']);
    expect(verifiedTokens.size).toBe(1);
    expect(await authenticator.authenticate(`bearer   ${jwt} `)).toBe(first);
    expect(verifiedTokens.size).toBe(1);
  });

  it('still rejects a remembered token once it expires, exactly at jose’s limit (exp + 60 s leeway)', async () => {
    const { authenticator, set } = setup({ ttlMs: 3_600_000 });
    const exp = seconds(start) + 30;
    const jwt = await sign({ tid, exp });
    await authenticator.authenticate(`Bearer ${jwt}`);
    set(new Date((exp + 59) * 1000 + 999));
    expect((await authenticator.authenticate(`Bearer ${jwt}`)).tenantId).toBe(tid);
    set(new Date((exp + 60) * 1000));
    const error = await rejection(authenticator.authenticate(`Bearer ${jwt}`));
    expect(error.message).toBe('Lifetime validation failed, the token is expired.');
  });

  it('verifies in full again for a clock that went back before nbf', async () => {
    const { authenticator, set } = setup();
    const nbf = seconds(start) - 10;
    const jwt = await sign({ tid, nbf, exp: seconds(start) + 600 });
    await authenticator.authenticate(`Bearer ${jwt}`);
    set(new Date((nbf - 61) * 1000));
    const error = await rejection(authenticator.authenticate(`Bearer ${jwt}`));
    expect(error.message).toBe("Access token validation failed: claim 'nbf' is not valid.");
  });

  it('never remembers a token that failed: bad signature, expired, or without a tenant', async () => {
    const { authenticator, verifiedTokens } = setup();
    const forged = await sign({ tid, exp: seconds(start) + 600 }, new TextEncoder().encode('x'.repeat(40)));
    const expired = await sign({ tid, exp: seconds(start) - 3600 });
    const tenantless = await sign({ exp: seconds(start) + 600 });
    for (const jwt of [forged, expired, tenantless]) {
      for (let attempt = 0; attempt < 2; attempt++) {
        await rejection(authenticator.authenticate(`Bearer ${jwt}`));
      }
    }
    expect(verifiedTokens.size).toBe(0);
  });

  it('does not let a remembered token vouch for a tampered copy', async () => {
    const { authenticator } = setup();
    const jwt = await sign({ tid, exp: seconds(start) + 600 });
    await authenticator.authenticate(`Bearer ${jwt}`);
    const [header, , signature] = jwt.split('.');
    const payload = Buffer.from(JSON.stringify({ tid: 'bbbbbbbb-2222-4222-8222-222222222222' })).toString(
      'base64url',
    );
    await rejection(authenticator.authenticate(`Bearer ${header}.${payload}.${signature}`));
  });

  it('trusts a verification only for the TTL, then verifies again', async () => {
    const { authenticator, verifiedTokens, set } = setup({ ttlMs: 1000 });
    const jwt = await sign({ tid, exp: seconds(start) + 3600 });
    const first = await authenticator.authenticate(`Bearer ${jwt}`);
    set(new Date(start.getTime() + 999));
    expect(await authenticator.authenticate(`Bearer ${jwt}`)).toBe(first);
    set(new Date(start.getTime() + 1000));
    const again = await authenticator.authenticate(`Bearer ${jwt}`);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
    expect(verifiedTokens.size).toBe(1);
  });

  it('holds at most maxEntries tokens', async () => {
    const { authenticator, verifiedTokens } = setup({ maxEntries: 2 });
    for (let i = 0; i < 5; i++) {
      await authenticator.authenticate(
        `Bearer ${await sign({ tid, jti: String(i), exp: seconds(start) + 3600 })}`,
      );
    }
    expect(verifiedTokens.size).toBe(2);
  });
});

describe('Authenticator.recall', () => {
  it('answers only a bearer verified before, with the same principal, and never throws', async () => {
    const { authenticator } = setup();
    const jwt = await sign({
      tid,
      roles: ['DeviceManagementServiceConfig.Read.All'],
      exp: seconds(start) + 600,
    });
    // Not verified yet: recall does not verify, it leaves that to authenticate.
    expect(authenticator.recall(`Bearer ${jwt}`)).toBeUndefined();
    const principal = await authenticator.authenticate(`Bearer ${jwt}`);
    expect(authenticator.recall(`Bearer ${jwt}`)).toBe(principal);
    expect(authenticator.recall(`bearer\t${jwt}  `)).toBe(principal);
    for (const header of [undefined, '', 'Bearer', `Basic ${jwt}`, `Bearer ${jwt} extra`, `Bearer ${jwt}x`]) {
      expect(authenticator.recall(header)).toBeUndefined();
    }
  });

  it('stops answering once the token expires or the trust window ends', async () => {
    const { authenticator, set } = setup({ ttlMs: 1000 });
    const exp = seconds(start) + 3600;
    const jwt = await sign({ tid, exp });
    await authenticator.authenticate(`Bearer ${jwt}`);
    set(new Date(start.getTime() + 999));
    expect(authenticator.recall(`Bearer ${jwt}`)?.tenantId).toBe(tid);
    set(new Date(start.getTime() + 1000));
    expect(authenticator.recall(`Bearer ${jwt}`)).toBeUndefined();

    const short = setup({ ttlMs: 3_600_000 });
    const soon = await sign({ tid, exp: seconds(start) + 30 });
    await short.authenticator.authenticate(`Bearer ${soon}`);
    short.set(new Date((seconds(start) + 30 + 60) * 1000));
    expect(short.authenticator.recall(`Bearer ${soon}`)).toBeUndefined();
  });

  it('never recalls a token that failed verification', async () => {
    const { authenticator } = setup();
    const forged = await sign({ tid, exp: seconds(start) + 600 }, new TextEncoder().encode('y'.repeat(40)));
    await rejection(authenticator.authenticate(`Bearer ${forged}`));
    expect(authenticator.recall(`Bearer ${forged}`)).toBeUndefined();
  });
});
