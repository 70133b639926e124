import { SignJWT } from 'jose';
import { writePermissions } from './permissions.js';

export interface IssueAccessTokenOptions {
  /** The HS256 secret (`VPPD_JWT_SECRET`). */
  readonly secret: Uint8Array;
  readonly tenantId: string;
  /** Application permissions (`roles`); default: read-write on the VPP surface. */
  readonly roles?: readonly string[];
  /** Lifetime in seconds (default 30 days: the demo token should outlive a working session). */
  readonly ttlSeconds?: number;
  readonly now?: Date;
}

/** Signs an HS256 bearer token vppd accepts (used by `serve --demo`; real deployments use Entra ID). */
export async function issueAccessToken(options: IssueAccessTokenOptions): Promise<string> {
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return new SignJWT({ tid: options.tenantId, roles: [...(options.roles ?? [writePermissions[0]])] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now)
    .setNotBefore(now - 60)
    .setExpirationTime(now + (options.ttlSeconds ?? 30 * 86_400))
    .setSubject('vppd-demo')
    .sign(options.secret);
}
