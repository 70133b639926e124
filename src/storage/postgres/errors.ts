// PostgreSQL's SQLSTATE codes as `pg` reports them in `error.code`.

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** unique_violation (a UNIQUE or PRIMARY KEY constraint). */
export function isPostgresUniqueViolation(error: unknown): boolean {
  return codeOf(error) === '23505';
}

/** foreign_key_violation. */
export function isPostgresForeignKeyViolation(error: unknown): boolean {
  return codeOf(error) === '23503';
}
