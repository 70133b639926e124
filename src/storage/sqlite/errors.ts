// SQLite's extended result codes as better-sqlite3 reports them in `error.code`.

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** A UNIQUE or PRIMARY KEY constraint failed. */
export function isSqliteUniqueViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** A FOREIGN KEY constraint failed (foreign keys are on: sqlite/dialect.ts). */
export function isSqliteForeignKeyViolation(error: unknown): boolean {
  return codeOf(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** Another connection holds a lock this one needs (after the busy timeout). */
export function isSqliteBusy(error: unknown): boolean {
  const code = codeOf(error);
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
