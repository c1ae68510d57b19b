// Moved to the port; kept so that older imports still resolve while they are updated.
export * from '../../ports/sql-errors.js';
