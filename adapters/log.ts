import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { ConfigError } from './config.js';

/**
 * Structured JSON logs. Secrets, tokens and e-mails are redacted here, by the logger itself, so no
 * call site has to remember: known sensitive keys at any depth, plus e-mail addresses and
 * token-shaped strings inside any logged string.
 */
const sensitiveKey = /(secret|token|password|passwd|authorization|cookie|signature|api[-_]?key|private[-_]?key|email|e-mail)/i;
const emailPattern = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
// GitHub tokens, JWTs, bearer values, sha256= signatures and credentials inside URLs.
const tokenPattern =
  /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9_-]{16,}|sha(1|256)=[0-9a-f]{20,})\b|(?<=[Bb]earer\s)[^\s"']+|(?<=:\/\/[^/\s:@]+:)[^@\s/]+(?=@)/g;

export const REDACTED = '[redacted]';

export function scrubText(text: string): string {
  return text.replace(emailPattern, REDACTED).replace(tokenPattern, REDACTED);
}

export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    // Stay an Error, so pino's error serializer still names its type and keeps its stack.
    const copy = new Error(scrubText(value.message));
    copy.name = value.name;
    copy.stack = scrubText(value.stack ?? '');
    return Object.assign(copy, 'code' in value ? { code: value.code } : {});
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = sensitiveKey.test(key) && v !== undefined && v !== null && typeof v !== 'boolean' ? REDACTED : scrub(v, depth + 1);
  }
  return out;
}

export function createLogger(options: { name?: string; level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'codex-k8s',
      level: options.level ?? logLevel(),
      base: { pid: process.pid },
      formatters: { log: (object) => scrub(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          // Scrub the message strings too; objects go through formatters.log.
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as typeof args;
          return method.apply(this, scrubbed);
        },
      },
    },
    (options.destination as pino.DestinationStream | undefined) ?? destination(),
  );
}

/**
 * Logs go to stderr: JSON lines for machines, and readable lines on a terminal (the same records,
 * already scrubbed). CODEXK8S_LOG_FORMAT=json|pretty chooses either way.
 */
function destination(): pino.DestinationStream {
  const format = process.env.CODEXK8S_LOG_FORMAT?.trim().toLowerCase() || (process.stderr.isTTY ? 'pretty' : 'json');
  if (format !== 'pretty' && format !== 'json') throw new ConfigError('CODEXK8S_LOG_FORMAT must be json or pretty');
  if (format === 'pretty') return pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: 'pid,hostname,name', translateTime: 'HH:MM:ss.l' });
  return pino.destination(2);
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** CODEXK8S_LOG_LEVEL, trimmed, in any case; empty is the default (info). */
function logLevel(): string {
  const level = process.env.CODEXK8S_LOG_LEVEL?.trim().toLowerCase() || 'info';
  if (!LEVELS.includes(level)) throw new ConfigError(`CODEXK8S_LOG_LEVEL must be one of ${LEVELS.join(', ')}`);
  return level;
}

export type { Logger };
