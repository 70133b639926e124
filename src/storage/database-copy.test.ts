import { describe, expect, it } from 'vitest';
import { copyOrder } from './database-copy.js';
import type { StoredTable } from './engine.js';

const table = (name: string, references: string[] = []): StoredTable => ({
  name,
  columns: [{ name: 'id', type: 'text', notNull: true, serial: false }],
  key: ['id'],
  references,
});

describe('copyOrder', () => {
  it('puts every table after the tables it references, by name among the ready ones', () => {
    const order = copyOrder([
      table('sync_runs', ['vpp_tokens']),
      table('license_runs', ['sync_runs']),
      table('vpp_tokens', ['tenants']),
      table('tenants'),
      table('alpha'),
      // A self-reference and a reference outside the copied tables do not hold a table back.
      table('tree', ['tree', 'elsewhere']),
    ]).map((t) => t.name);
    expect(order).toEqual(['alpha', 'tenants', 'tree', 'vpp_tokens', 'sync_runs', 'license_runs']);
  });

  it('refuses a cycle of foreign keys, naming its tables', () => {
    expect(() => copyOrder([table('a', ['b']), table('b', ['a']), table('c')])).toThrow(
      'the foreign keys of a, b form a cycle: db copy cannot order them',
    );
  });
});
