import { SignJWT } from 'jose';

/** The HS256 secret the test apps trust. */
export const testJwtSecret = 'test-secret-that-is-at-least-32-bytes-long!';

export interface MintOptions {
  tenantId?: string | undefined;
  roles?: readonly string[];
  scp?: string;
  secret?: string;
  /** Seconds from `now` until expiry (negative: already expired). */
  expiresIn?: number;
  now?: Date;
  extra?: Record<string, unknown>;
}

/** Signs an HS256 access token the way an issuer would (jose, independent of vppd's own minting). */
export async function mintToken(options: MintOptions = {}): Promise<string> {
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const claims: Record<string, unknown> = { ...(options.extra ?? {}) };
  if (options.tenantId !== undefined) claims.tid = options.tenantId;
  if (options.roles) claims.roles = [...options.roles];
  if (options.scp !== undefined) claims.scp = options.scp;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? testJwtSecret));
}

/** Application permissions as Graph names them. */
export const roles = {
  readWrite: 'DeviceManagementServiceConfig.ReadWrite.All',
  read: 'DeviceManagementServiceConfig.Read.All',
  appsRead: 'DeviceManagementApps.Read.All',
  appsReadWrite: 'DeviceManagementApps.ReadWrite.All',
} as const;
