import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openTestStorage, storageEngines } from './helpers/storage-engines.js';

describe.each(storageEngines)('storage engine %s', (kind) => {
  it('opens, migrates and answers', async () => {
    const storage = await openTestStorage(kind);
    try {
      expect(storage.kind).toBe(kind);
      const { rows } = await sql<{ n: number }>`select count(*) as n from vppd_migrations`.execute(
        storage.db,
      );
      expect(Number(rows[0]?.n)).toBe(6);
    } finally {
      await storage.close();
    }
  });
});
