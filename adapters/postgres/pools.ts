import pg from 'pg';
import type { DatabaseConfig } from '../config.js';

// int8 columns that the platform reads (positions, counts) stay exact as strings; callers convert.
export interface Pools {
  primary: pg.Pool;
  /** The replica pools in configured order; empty when reads go to the primary. */
  replicas: pg.Pool[];
  end(): Promise<void>;
}

/** How long a caller waits for a connection (a new one, or a turn at a busy pool) before an error. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export function createPool(url: string, max: number, applicationName: string, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): pg.Pool {
  // connectionTimeoutMillis bounds both connecting and waiting for a turn when every client is busy:
  // no caller waits for a connection forever.
  const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName, connectionTimeoutMillis: connectTimeoutMs });
  // An idle client that loses its server (restart, failover) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

export function createPools(config: DatabaseConfig, applicationName = 'codex-k8s'): Pools {
  const primary = createPool(config.primaryUrl, config.poolSize, applicationName, config.connectTimeoutMs);
  const replicas = config.replicaUrls.map((url) => createPool(url, config.poolSize, applicationName, config.connectTimeoutMs));
  return {
    primary,
    replicas,
    async end() {
      await Promise.all([primary.end(), ...replicas.map((p) => p.end())]);
    },
  };
}
