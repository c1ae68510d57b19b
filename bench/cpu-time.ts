import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalCluster } from '../adapters/postgres/local-cluster.js';

/**
 * CPU time spent by the processes a benchmark runs (Linux's /proc), so it can say where a burst's
 * CPU went and how many runs a second the machine's cores could give at that cost. Elsewhere it
 * measures nothing and says so.
 */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat after the command name (which, in parentheses, may hold spaces); undefined once it has ended. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** [own CPU, CPU of its children that exited and were waited for], in seconds. */
function processSeconds(pid: number): [number, number] | undefined {
  const fields = statFields(pid);
  if (!fields) return undefined;
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  return [(utime! + stime!) / ticksPerSecond, (cutime! + cstime!) / ticksPerSecond];
}

/** A postmaster and its children: the servers' CPU, with backends that ended counted in the postmaster's. */
function serverSeconds(dataDir: string): number {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return Number.NaN; // not running, or not ours to read: unknown, not zero
  }
  const [own, reaped] = processSeconds(postmaster) ?? [0, 0];
  let children = 0;
  // A child that ended while we looked is in the postmaster's reaped time.
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry) && Number(statFields(entry)?.[1]) === postmaster) children += processSeconds(Number(entry))?.[0] ?? 0;
  }
  return own + reaped + children;
}

export type CpuSample = Record<string, number>;

/** What `sample` reads: this process, some child processes by pid, and the local database cluster's two servers. */
export function cpuSampler(parts: { self: string; processes: Record<string, number[]>; cluster: LocalCluster }) {
  const available = existsSync('/proc/self/stat');
  const sample = (): CpuSample => {
    if (!available) return {};
    const usage = process.cpuUsage();
    const result: CpuSample = { [parts.self]: (usage.user + usage.system) / 1e6 };
    for (const [name, pids] of Object.entries(parts.processes)) result[name] = pids.reduce((sum, pid) => sum + (processSeconds(pid)?.[0] ?? 0), 0);
    result.postgresql = serverSeconds(parts.cluster.primary.dir) + serverSeconds(parts.cluster.replica.dir);
    return result;
  };
  return { available, sample };
}

/** CPU milliseconds per unit of work between two samples, by part. */
export function perUnit(before: CpuSample, after: CpuSample, units: number): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((name) => [name, ((after[name]! - (before[name] ?? 0)) * 1000) / units]));
}
