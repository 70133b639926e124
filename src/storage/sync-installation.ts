import type { VppdDatabase } from './open-database.js';

const installationKey = 'installation_id';

/**
 * The stable UUID of this vppd installation (its `mdmInfo.id` at Apple), created on first use and
 * shared by every process on the database: the first writer wins, everyone reads the stored value.
 */
export async function loadInstallationId(db: VppdDatabase, newId: () => string): Promise<string> {
  await db
    .insertInto('vppd_settings')
    .values({ key: installationKey, value: newId() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db
    .selectFrom('vppd_settings')
    .select('value')
    .where('key', '=', installationKey)
    .executeTakeFirstOrThrow();
  return row.value;
}
