import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../adapters/paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A command that outlives this is killed and answers `code: null`, so a hang fails its test instead of the whole run. */
const cliTimeoutMs = 120_000;

/** Runs the real `codex-k8s` executable with the Node.js that runs the tests. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // The platform's settings are the test's to give; where this machine's test database listens is not.
    const cleanEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if ((!k.startsWith('CODEXK8S_') || k === 'CODEXK8S_LOCAL_PG_PORT') && v !== undefined) cleanEnv[k] = v;
    for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'codex-k8s.js'), ...args], { env: cleanEnv, timeout: cliTimeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
