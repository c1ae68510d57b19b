/** PostgreSQL SQLSTATE codes the adapters act on. */
export const pgCode = {
  uniqueViolation: '23505',
  /** Raised by flow_events_version_conflict(): an append's expected version did not match. */
  versionConflict: 'CK409',
  serializationFailure: '40001',
  insufficientPrivilege: '42501',
  undefinedTable: '42P01',
  duplicateDatabase: '42P04',
  duplicateObject: '42710',
} as const;

export const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;

export const constraintOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'constraint' in error ? String((error as { constraint: unknown }).constraint) : undefined;
