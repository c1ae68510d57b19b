/** PostgreSQL SQLSTATE codes the adapters act on. */
export const pgCode = {
  uniqueViolation: '23505',
  /** Raised by flow_events_version_conflict(): an append's expected version did not match. */
  versionConflict: 'CK409',
  serializationFailure: '40001',
  /** statement_timeout ran out (or the statement was cancelled). */
  queryCanceled: '57014',
  /** lock_timeout ran out. */
  lockNotAvailable: '55P03',
  insufficientPrivilege: '42501',
  undefinedTable: '42P01',
  duplicateDatabase: '42P04',
  duplicateObject: '42710',
} as const;

const codeOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;

/** The server's SQLSTATE, if the error came from the server (node's own errors have codes like ECONNRESET). */
export const sqlState = (error: unknown): string | undefined => {
  const code = codeOf(error);
  return code && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
};

/**
 * The connection, not the statement, failed: the server went away, refused us, or cut the session
 * (SQLSTATE class 08, admin shutdown 57P01-57P03, or a socket error).
 */
export const isConnectionFailure = (error: unknown): boolean => {
  const state = sqlState(error);
  if (state) return /^(08|57P0[1-3])/.test(state);
  const code = codeOf(error);
  if (code && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT…
  return error instanceof Error && /Connection terminated|connection error|timeout expired|timeout exceeded when trying to connect/i.test(error.message);
};

export const constraintOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'constraint' in error ? String((error as { constraint: unknown }).constraint) : undefined;
