import { CommanderError } from 'commander';
import { ConfigError } from '../config.js';
import { LocalClusterError } from '../postgres/local-cluster.js';
import { ConcurrencyError, EventDecodeError } from '../../ports/event-store.js';
import { GithubError } from '../github/directory.js';
import { AgentRunError } from '../agent/steps.js';
import { ValidationError } from '../../domain/shared/codec.js';
import { RebuildError } from '../../projections/rebuild.js';
import { DomainError } from '../../domain/shared/errors.js';
import { TokenCipherError } from '../crypto/token-cipher.js';
import { scrubText } from '../log.js';
import { CliError } from './errors.js';
import { buildProgram } from './program.js';

const expected = [CliError, ConfigError, LocalClusterError, ValidationError, ConcurrencyError, EventDecodeError, RebuildError, DomainError, TokenCipherError, GithubError, AgentRunError, RangeError];

/** A server that cannot be reached (the database, the cluster, GitHub) is the operator's to fix: said in one line, with where. */
function unreachableOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; address?: unknown; port?: unknown };
  if (typeof e?.code !== 'string' || !['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(e.code)) return undefined;
  const where = typeof e.address === 'string' ? `${e.address}${e.port !== undefined ? `:${String(e.port)}` : ''}` : 'the server';
  return `cannot connect to ${where} (${e.code})`;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander has printed its message already; --help and --version exit 0.
    process.exitCode = error.exitCode;
  } else {
    const unreachable = unreachableOf(error);
    const known = unreachable !== undefined || expected.some((k) => error instanceof k);
    const message = unreachable ?? (error instanceof Error ? error.message : String(error));
    process.stderr.write(`codex-k8s: ${scrubText(known ? message : `unexpected error: ${message}`)}\n`);
    process.exitCode = known ? 1 : 2;
  }
  // A command that failed is over: whatever it had opened (a pool, a LISTEN connection with its
  // reconnect timer, a listening socket) must not keep the process alive after its message.
  process.exit();
}
