/** A SQLite database: a file (WAL) or an in-memory database of this process. */
export type SqliteDatabaseConfig =
  | { readonly kind: 'sqlite'; readonly url: string; readonly filename: string }
  | { readonly kind: 'sqlite-memory'; readonly url: string };

/**
 * Parses `sqlite:<path>`, `sqlite://<path>`, `sqlite::memory:`; undefined for a URL of another engine.
 * Throws (a message for the operator) when it is a SQLite URL without a path.
 */
export function parseSqliteUrl(url: string): SqliteDatabaseConfig | undefined {
  if (url === 'sqlite::memory:' || url === 'sqlite://:memory:') return { kind: 'sqlite-memory', url };
  if (!url.startsWith('sqlite:')) return undefined;
  const filename = url.startsWith('sqlite://') ? url.slice('sqlite://'.length) : url.slice('sqlite:'.length);
  if (filename.trim() === '') throw new Error('sqlite: URL needs a file path');
  return { kind: 'sqlite', url, filename };
}
