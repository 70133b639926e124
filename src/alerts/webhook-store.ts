import { isIP } from 'node:net';
import { errors } from '../domain/errors.js';
import type { StorageEngine } from '../storage/engine.js';
import type { VppdDatabase } from '../storage/open-database.js';
import type { TokenCipher } from '../storage/token-cipher.js';
import { type AlertEventType, alertEventTypes, defaultAlertEventTypes } from './alert-events.js';
import { type AlertsDatabase, type AlertWebhookRow, alertsDatabaseOf } from './alert-tables.js';
import type { WebhookAddressPolicy } from './webhook-address-policy.js';
import { systemLookup, type WebhookLookup } from './webhook-fetch.js';

/** A webhook endpoint as the API shows it: never its secret. */
export interface AlertWebhook {
  readonly id: string;
  readonly tenantId: string;
  readonly url: string;
  readonly events: readonly AlertEventType[];
  readonly createdAt: Date;
}

/** An endpoint with its secret, for signing deliveries only. */
export interface AlertWebhookWithSecret extends AlertWebhook {
  readonly secret: string;
}

/** What a create returns: the endpoint and, this once, its secret. */
export interface CreatedAlertWebhook {
  readonly webhook: AlertWebhook;
  readonly secret: string;
}

/** Most endpoints a tenant may have (each alert is one outbox row per endpoint). */
export const maxWebhooksPerTenant = 20;

export interface WebhookStoreOptions {
  readonly db: VppdDatabase;
  /** The engine `db` runs on (the per-tenant limit is counted under a lock on the tenant's row). */
  readonly storage: StorageEngine;
  readonly cipher: TokenCipher;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly randomBytes: (size: number) => Buffer;
  /** Where deliveries may go; creation refuses what delivery would refuse. */
  readonly addressPolicy: WebhookAddressPolicy;
  /** Resolves a webhook's host name at creation (default: the system resolver). */
  readonly lookup?: WebhookLookup;
}

/** Tenant-scoped webhook endpoints (`alert_webhooks`); secrets generated here and stored sealed. */
export interface WebhookStore {
  /** Validates and stores an endpoint; the secret is returned only here. */
  create(tenantId: string, input: { url: unknown; events?: unknown }): Promise<CreatedAlertWebhook>;
  list(tenantId: string): Promise<AlertWebhook[]>;
  get(tenantId: string, id: string): Promise<AlertWebhook | undefined>;
  /** True when the endpoint existed; its queued alerts go with it. */
  delete(tenantId: string, id: string): Promise<boolean>;
  /** The tenant's endpoints subscribed to `type` (ids only matter: secrets stay sealed). */
  subscribers(tenantId: string, type: AlertEventType): Promise<AlertWebhook[]>;
  /** One endpoint with its secret (signing a delivery). */
  withSecret(tenantId: string, id: string): Promise<AlertWebhookWithSecret | undefined>;
}

/**
 * Checks a webhook URL: absolute http(s), no credentials, a host the address policy allows (the
 * WHATWG parser has already turned `127.1`, `2130706433` and `0x7f.1` into `127.0.0.1`), and HTTPS
 * unless the operator allowed the host (a development receiver).
 */
export function validateWebhookUrl(input: unknown, policy: WebhookAddressPolicy): URL {
  if (typeof input !== 'string' || input.length === 0 || input.length > 2048) {
    throw errors.badRequest("'url' must be an absolute https URL of at most 2048 characters.");
  }
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw errors.badRequest("'url' must be an absolute https URL.");
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw errors.badRequest("'url' must be an https URL.");
  }
  if (url.username !== '' || url.password !== '') {
    throw errors.badRequest("'url' must not carry credentials; vppd signs each delivery instead.");
  }
  const verdict = policy.checkHost(url.hostname);
  if (verdict !== undefined) throw errors.badRequest(`'url': ${verdict}`);
  if (url.protocol === 'http:' && !policy.allowsHost(url.hostname)) {
    throw errors.badRequest(
      "'url' must use https (plain http only to hosts an operator allowed with VPPD_WEBHOOK_ALLOW).",
    );
  }
  return url;
}

/** How long creating an endpoint waits for its host name to resolve before accepting it unchecked. */
const createLookupTimeoutMs = 3_000;

/**
 * Refuses a host name that resolves to an address deliveries would refuse. A name that does not
 * resolve now is accepted: every delivery checks the address it connects to anyway.
 */
async function checkResolved(url: URL, policy: WebhookAddressPolicy, lookup: WebhookLookup): Promise<void> {
  const host = url.hostname;
  if (isIP(host.replace(/^\[|\]$/g, '')) !== 0 || policy.allowsHost(host)) return;
  let timer: NodeJS.Timeout | undefined;
  const found = await Promise.race([
    lookup(host).catch(() => []),
    new Promise<[]>((resolve) => {
      timer = setTimeout(() => resolve([]), createLookupTimeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  for (const { address } of found) {
    const verdict = policy.checkAddress(host, address);
    if (verdict !== undefined) throw errors.badRequest(`'url': ${verdict}`);
  }
}

function validateEvents(input: unknown): AlertEventType[] {
  if (input === undefined || input === null) return [...defaultAlertEventTypes];
  const known: readonly string[] = alertEventTypes;
  if (
    !Array.isArray(input) ||
    input.length === 0 ||
    !input.every((e) => typeof e === 'string' && known.includes(e))
  ) {
    throw errors.badRequest(`'events' must be a non-empty array of: ${alertEventTypes.join(', ')}.`);
  }
  return alertEventTypes.filter((type) => input.includes(type));
}

/** Builds the store over the database and the token cipher. */
export function createWebhookStore(options: WebhookStoreOptions): WebhookStore {
  const db: AlertsDatabase = alertsDatabaseOf(options.db);
  const { cipher, clock, newId } = options;
  // The cipher binds tenant and id as associated data: a sealed secret copied to another row fails.
  const sealContext = (tenantId: string, id: string) => `alert-webhook:${tenantId}:${id}`;

  const toWebhook = (row: AlertWebhookRow): AlertWebhook => ({
    id: row.id,
    tenantId: row.tenant_id,
    url: row.url,
    events: JSON.parse(row.events) as AlertEventType[],
    createdAt: new Date(row.created_at),
  });
  const withSecretOf = (row: AlertWebhookRow): AlertWebhookWithSecret => ({
    ...toWebhook(row),
    secret: cipher.open(
      { ciphertext: row.secret_ciphertext, iv: row.secret_iv, tag: row.secret_tag },
      sealContext(row.tenant_id, row.id),
    ),
  });

  return {
    async create(tenantId, input) {
      const parsed = validateWebhookUrl(input.url, options.addressPolicy);
      await checkResolved(parsed, options.addressPolicy, options.lookup ?? systemLookup);
      const url = parsed.toString();
      const events = validateEvents(input.events);
      const id = newId();
      const secret = `whsec_${options.randomBytes(32).toString('base64url')}`;
      const sealed = cipher.seal(secret, sealContext(tenantId, id));
      const now = clock().toISOString();
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('tenants')
          .values({ id: tenantId, created_at: now })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        await options.storage
          .lockForUpdate(trx.selectFrom('tenants').select('id').where('id', '=', tenantId))
          .execute();
        const { n } = await trx
          .selectFrom('alert_webhooks')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('tenant_id', '=', tenantId)
          .executeTakeFirstOrThrow();
        if (Number(n) >= maxWebhooksPerTenant) {
          throw errors.conflict(`A tenant can have at most ${maxWebhooksPerTenant} alert webhooks.`);
        }
        await trx
          .insertInto('alert_webhooks')
          .values({
            id,
            tenant_id: tenantId,
            url,
            events: JSON.stringify(events),
            secret_ciphertext: sealed.ciphertext,
            secret_iv: sealed.iv,
            secret_tag: sealed.tag,
            created_at: now,
          })
          .execute();
      });
      return { webhook: { id, tenantId, url, events, createdAt: new Date(now) }, secret };
    },
    async list(tenantId) {
      const rows = await db
        .selectFrom('alert_webhooks')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toWebhook);
    },
    async get(tenantId, id) {
      const row = await db
        .selectFrom('alert_webhooks')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? toWebhook(row) : undefined;
    },
    async delete(tenantId, id) {
      const result = await db
        .deleteFrom('alert_webhooks')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async subscribers(tenantId, type) {
      const rows = await db
        .selectFrom('alert_webhooks')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .execute();
      return rows.filter((row) => (JSON.parse(row.events) as string[]).includes(type)).map(toWebhook);
    },
    async withSecret(tenantId, id) {
      const row = await db
        .selectFrom('alert_webhooks')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? withSecretOf(row) : undefined;
    },
  };
}
