import { randomUUID } from 'node:crypto';
import { encodeSToken } from '../../src/domain/stoken.js';

export interface STokenFields {
  token: string;
  expDate: Date;
  orgName: string;
}

/** A `.vpptoken` file content as Apple writes it; every call gets a fresh inner token unless given. */
export function buildSToken(overrides: Partial<STokenFields> = {}): string {
  return encodeSToken({
    token: overrides.token ?? `tok-${randomUUID()}`,
    expDate: overrides.expDate ?? new Date('2030-11-08T22:33:22.000Z'),
    orgName: overrides.orgName ?? 'Example School District',
  });
}
