import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { isVppdError } from '../src/domain/errors.js';
import { decodeSToken } from '../src/domain/stoken.js';
import { createVppToken } from '../src/domain/vpp-token.js';
import type { StorageEngine, StorageEngineKind } from '../src/storage/engine.js';
import { storageMigrations } from '../src/storage/migrations/storage-migrations.js';
import { openStorage, parseDatabaseUrl } from '../src/storage/open-database.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore, type VppTokenStore } from '../src/storage/vpp-token-store.js';
import { createFakeClock, createSequentialIds } from './helpers/fake-clock.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { openTestStorage, storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

const dir = mkdtempSync(join(tmpdir(), 'vppd-store-'));
const key = Buffer.alloc(32, 9);
const tenantA = 'aaaaaaaa-0000-4000-8000-000000000000';
const tenantB = 'bbbbbbbb-0000-4000-8000-000000000000';
const opened: StorageEngine[] = [];

afterAll(async () => {
  for (const storage of opened) await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

let fileCounter = 0;
async function freshStore(kind: StorageEngineKind): Promise<{
  store: VppTokenStore;
  storage: StorageEngine;
  file: string;
  clock: ReturnType<typeof createFakeClock>;
}> {
  fileCounter += 1;
  const file = join(dir, `nested/dir-${fileCounter}/vppd.db`);
  const storage = await openTestStorage(kind, { sqliteUrl: `sqlite:${file}` });
  opened.push(storage);
  const clock = createFakeClock();
  return {
    store: createVppTokenStore({ storage, cipher: createTokenCipher(key), clock: clock.now }),
    storage,
    file,
    clock,
  };
}

const ids = createSequentialIds();
function newToken(tenantId: string, content = buildSToken(), now = new Date('2026-03-01T12:00:00Z')) {
  const decoded = decodeSToken(content);
  return {
    token: createVppToken({ id: ids(), tenantId, decoded, write: { displayName: 'Main' }, now }),
    decoded,
  };
}

describe.each(storageEngines)('VppTokenStore on %s', (kind) => {
  let store: VppTokenStore;
  let storage: StorageEngine;
  let file: string;
  beforeEach(async () => {
    ({ store, storage, file } = await freshStore(kind));
  });

  // Engine-specific checks are defined only on their engine: a run shows nothing skipped.
  const onlyOn = (engine: StorageEngineKind) => (kind === engine ? it : () => {});

  onlyOn('postgres')('creates the schema', async () => {
    const tables = await storage.db
      .selectFrom('information_schema.tables' as never)
      .select('table_name' as never)
      .where('table_schema' as never, '=', 'public' as never)
      .execute();
    expect(tables.map((t) => (t as { table_name: string }).table_name)).toEqual(
      expect.arrayContaining(['tenants', 'vpp_tokens', 'vpp_token_action_results', 'vppd_migrations']),
    );
  });

  onlyOn('sqlite')('creates the database file (and its directory) with WAL and the schema', () => {
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = raw
        .prepare("select name from sqlite_master where type = 'table' order by name")
        .all()
        .map((r) => (r as { name: string }).name);
      expect(tables).toEqual(
        expect.arrayContaining(['tenants', 'vpp_tokens', 'vpp_token_action_results', 'vppd_migrations']),
      );
    } finally {
      raw.close();
    }
  });

  it('round-trips every property and keeps the sToken only encrypted', async () => {
    const content = buildSToken({ orgName: 'Round Trip Inc.' });
    const { token, decoded } = newToken(tenantA, content);
    const created = await store.create(
      {
        ...token,
        roleScopeTagIds: ['0', '7'],
        appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement',
      },
      decoded,
    );
    expect(created).toMatchObject({
      id: token.id,
      tenantId: tenantA,
      organizationName: 'Round Trip Inc.',
      state: 'unknown',
      lastSyncStatus: 'none',
      displayName: 'Main',
      roleScopeTagIds: ['0', '7'],
      appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement',
      tokenActionResults: [],
    });
    expect(created.lastSyncDateTime.toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(await store.get(tenantA, token.id)).toEqual(created);
    expect(await store.readSToken(tenantA, token.id)).toBe(content);

    // Nothing stored (or, on SQLite, on disk) contains the sToken or its inner token in clear.
    const row = await storage.db.selectFrom('vpp_tokens').selectAll().executeTakeFirst();
    const dump = JSON.stringify(row);
    expect(dump).not.toContain(content);
    expect(dump).not.toContain(decoded.token);
    for (const f of kind === 'sqlite' ? [file, `${file}-wal`] : []) {
      let bytes = '';
      try {
        bytes = readFileSync(f).toString('latin1');
      } catch {
        continue;
      }
      expect(bytes).not.toContain(content);
      expect(bytes).not.toContain(decoded.token);
    }
  });

  it('rejects the same sToken twice in a tenant but allows it in another tenant', async () => {
    const content = buildSToken();
    await store.create(newToken(tenantA, content).token, decodeSToken(content));
    await expect(store.create(newToken(tenantA, content).token, decodeSToken(content))).rejects.toSatisfy(
      (e) => isVppdError(e, 'conflict'),
    );
    // A re-encoded file with the same inner token is the same credential.
    const sameInner = buildSToken({ token: decodeSToken(content).token, orgName: 'Other spelling' });
    await expect(store.create(newToken(tenantA, sameInner).token, decodeSToken(sameInner))).rejects.toSatisfy(
      (e) => isVppdError(e, 'conflict'),
    );
    const other = await store.create(newToken(tenantB, content).token, decodeSToken(content));
    expect(other.tenantId).toBe(tenantB);
    expect(await store.count(tenantA)).toBe(1);
    expect(await store.count(tenantB)).toBe(1);
  });

  it('scopes every operation to the tenant', async () => {
    const { token, decoded } = newToken(tenantA);
    await store.create(token, decoded);
    expect(await store.get(tenantB, token.id)).toBeUndefined();
    expect(await store.list(tenantB)).toEqual([]);
    expect(await store.count(tenantB)).toBe(0);
    expect(await store.update(tenantB, token.id, { displayName: 'stolen' })).toBeUndefined();
    expect(await store.readSToken(tenantB, token.id)).toBeUndefined();
    expect(await store.replaceActionResults(tenantB, token.id, [])).toBe(false);
    expect(await store.delete(tenantB, token.id)).toBe(false);
    expect((await store.get(tenantA, token.id))?.displayName).toBe('Main');
  });

  it('updates only the given properties and renews the sToken', async () => {
    const { token, decoded } = newToken(tenantA);
    await store.create(token, decoded);
    const renewedContent = buildSToken({ orgName: 'Renamed Org', expDate: new Date('2031-01-01T00:00:00Z') });
    const renewed = decodeSToken(renewedContent);
    const updated = await store.update(
      tenantA,
      token.id,
      {
        displayName: null,
        automaticallyUpdateApps: true,
        organizationName: renewed.orgName,
        expirationDateTime: renewed.expDate,
        lastModifiedDateTime: new Date('2026-03-02T00:00:00Z'),
      },
      renewed,
    );
    expect(updated).toMatchObject({
      displayName: null,
      automaticallyUpdateApps: true,
      organizationName: 'Renamed Org',
      vppTokenAccountType: 'business',
    });
    expect(updated?.expirationDateTime.toISOString()).toBe('2031-01-01T00:00:00.000Z');
    expect(await store.readSToken(tenantA, token.id)).toBe(renewedContent);
  });

  it('refuses a renewal to an sToken another token of the tenant holds', async () => {
    const first = newToken(tenantA);
    const second = newToken(tenantA);
    await store.create(first.token, first.decoded);
    await store.create(second.token, second.decoded);
    await expect(store.update(tenantA, second.token.id, {}, first.decoded)).rejects.toSatisfy((e) =>
      isVppdError(e, 'conflict'),
    );
    expect(await store.readSToken(tenantA, second.token.id)).toBe(second.decoded.content);
  });

  it('lists in creation order, counts, and deletes with action results', async () => {
    const made = [newToken(tenantA), newToken(tenantA), newToken(tenantA)];
    for (const m of made) await store.create(m.token, m.decoded);
    const at = new Date('2026-03-01T13:00:00Z');
    const target = made[1]!.token.id;
    expect(
      await store.replaceActionResults(tenantA, target, [
        { actionName: 'syncLicenses', actionState: 'done', startDateTime: at, lastUpdatedDateTime: at },
        {
          actionName: 'revokeLicenses',
          actionState: 'failed',
          startDateTime: at,
          lastUpdatedDateTime: at,
          revoke: { actionFailureReason: 'appleFailure', totalLicensesCount: 10, failedLicensesCount: 2 },
        },
      ]),
    ).toBe(true);
    const listed = await store.list(tenantA);
    expect(listed.map((t) => t.id)).toEqual(made.map((m) => m.token.id));
    expect(listed[1]?.tokenActionResults.map((r) => r.actionName)).toEqual([
      'syncLicenses',
      'revokeLicenses',
    ]);
    expect(listed[1]?.tokenActionResults[1]?.revoke).toEqual({
      actionFailureReason: 'appleFailure',
      totalLicensesCount: 10,
      failedLicensesCount: 2,
    });
    expect(await store.count(tenantA)).toBe(3);
    expect(
      await store.count(tenantA, {
        kind: 'compare',
        property: 'displayName',
        operator: 'eq',
        value: { type: 'string', value: 'nobody' },
      }),
    ).toBe(0);
    expect(await store.delete(tenantA, target)).toBe(true);
    expect(await store.delete(tenantA, target)).toBe(false);
    expect(await store.get(tenantA, target)).toBeUndefined();
    expect(await store.count(tenantA)).toBe(2);
  });
});

describe.each(storageEngines)('per-tenant token limit on %s', (kind) => {
  it('refuses a token past the limit with a conflict, per tenant', async () => {
    const storage = await openTestStorage(kind);
    opened.push(storage);
    const store = createVppTokenStore({
      storage,
      cipher: createTokenCipher(key),
      clock: () => new Date(),
      maxTokensPerTenant: 2,
    });
    for (let i = 0; i < 2; i += 1) {
      const { token, decoded } = newToken(tenantA);
      await store.create(token, decoded);
    }
    const third = newToken(tenantA);
    await expect(store.create(third.token, third.decoded)).rejects.toSatisfy(
      (e) => isVppdError(e, 'conflict') && /at most 2 VPP tokens/.test((e as Error).message),
    );
    expect(await store.count(tenantA)).toBe(2);
    const other = newToken(tenantB);
    await store.create(other.token, other.decoded);
    expect(await store.count(tenantB)).toBe(1);
  });

  it('holds the limit when uploads race (the tenant row is locked while counting)', async () => {
    const storage = await openTestStorage(kind);
    opened.push(storage);
    const store = createVppTokenStore({
      storage,
      cipher: createTokenCipher(key),
      clock: () => new Date(),
      maxTokensPerTenant: 3,
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, () => {
        const { token, decoded } = newToken(tenantA);
        return store.create(token, decoded);
      }),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    for (const o of outcomes)
      if (o.status === 'rejected') expect(isVppdError(o.reason, 'conflict')).toBe(true);
    expect(await store.count(tenantA)).toBe(3);
  });
});

describe.each(storageEngines)('openStorage on %s', (kind) => {
  it('reopens an existing database without re-running migrations, and keeps the data', async () => {
    const file = join(dir, `reopen-${kind}/vppd.db`);
    const config = parseDatabaseUrl(await testDatabaseUrl(kind, `sqlite:${file}`));
    const first = await openStorage(config);
    const store = createVppTokenStore({
      storage: first,
      cipher: createTokenCipher(key),
      clock: () => new Date(),
    });
    const { token, decoded } = newToken(tenantA);
    await store.create(token, decoded);
    await first.close();
    const second = await openStorage(config);
    opened.push(second);
    const again = createVppTokenStore({
      storage: second,
      cipher: createTokenCipher(key),
      clock: () => new Date(),
    });
    expect((await again.get(tenantA, token.id))?.id).toBe(token.id);
    const migrations = await second.db
      .selectFrom('vppd_migrations' as never)
      .selectAll()
      .execute();
    // Each migration ran exactly once, none again on reopen.
    expect(migrations).toHaveLength(Object.keys(storageMigrations(second.ddl)).length);
  });

  if (kind === 'sqlite')
    it('works in memory', async () => {
      const storage = await openStorage(parseDatabaseUrl('sqlite::memory:'));
      opened.push(storage);
      const store = createVppTokenStore({ storage, cipher: createTokenCipher(key), clock: () => new Date() });
      const { token, decoded } = newToken(tenantA);
      await store.create(token, decoded);
      expect(await store.count(tenantA)).toBe(1);
    });
});
