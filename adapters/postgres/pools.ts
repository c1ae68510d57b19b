import pg from 'pg';
import type { DatabaseConfig } from '../config.js';

// int8 columns that the platform reads (positions, counts) stay exact as strings; callers convert.
export interface Pools {
  primary: pg.Pool;
  /** The replica pools in configured order; empty when reads go to the primary. */
  replicas: pg.Pool[];
  end(): Promise<void>;
}

export function createPool(url: string, max: number, applicationName: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName });
  // An idle client that loses its server (restart, failover) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

export function createPools(config: DatabaseConfig, applicationName = 'codex-k8s'): Pools {
  const primary = createPool(config.primaryUrl, config.poolSize, applicationName);
  const replicas = config.replicaUrls.map((url) => createPool(url, config.poolSize, applicationName));
  return {
    primary,
    replicas,
    async end() {
      await Promise.all([primary.end(), ...replicas.map((p) => p.end())]);
    },
  };
}
