/**
 * The one place that reads CODEXK8S_* settings. Each section is read when first needed, so a command
 * that needs no database (for example `db up`) does not demand CODEXK8S_DATABASE_URL. A missing or
 * bad value fails with a message that names the variable.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

import { parseKeyRing, type KeyRing } from './crypto/keys.js';
import { isEmail } from '../domain/shared/codec.js';

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set`);
  return value;
}

function postgresUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`${name} must be a postgres:// URL`);
  }
  return raw;
}

export function integer(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}`);
  return value;
}

export interface DatabaseConfig {
  /** The platform's role (CODEXK8S_DATABASE_URL): appends to and reads the log, writes read models. */
  primaryUrl: string;
  /**
   * The owner's role (CODEXK8S_DATABASE_OWNER_URL), for migrations and rebuilds; unset: the
   * platform's URL, which then has to own the schema (and so could rewrite the log).
   */
  ownerUrl: string;
  /** Empty: read from the primary. More than one: reads spread over the healthy ones. */
  replicaUrls: string[];
  poolSize: number;
  /** CODEXK8S_DATABASE_CONNECT_TIMEOUT_MS: the longest wait for a connection (5000). */
  connectTimeoutMs: number;
}

export function databaseConfig(env: Env = process.env): DatabaseConfig {
  const primaryUrl = postgresUrl('CODEXK8S_DATABASE_URL', required(env, 'CODEXK8S_DATABASE_URL'));
  const replicaUrls = (env.CODEXK8S_DATABASE_REPLICA_URLS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((u) => postgresUrl('CODEXK8S_DATABASE_REPLICA_URLS', u));
  const ownerRaw = env.CODEXK8S_DATABASE_OWNER_URL?.trim();
  const ownerUrl = ownerRaw ? postgresUrl('CODEXK8S_DATABASE_OWNER_URL', ownerRaw) : primaryUrl;
  return {
    primaryUrl,
    ownerUrl,
    replicaUrls,
    poolSize: integer(env, 'CODEXK8S_DATABASE_POOL_SIZE', 10, 1, 500),
    connectTimeoutMs: integer(env, 'CODEXK8S_DATABASE_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
  };
}

/** CODEXK8S_SHUTDOWN_TIMEOUT: seconds from SIGTERM to exit, whatever is still blocked (10). */
export function shutdownTimeoutMs(env: Env = process.env): number {
  return integer(env, 'CODEXK8S_SHUTDOWN_TIMEOUT', 10, 1, 3600) * 1000;
}

export interface ReadConfig {
  /** When no replica is healthy: `primary` reads the primary's copy of the models, `fail` answers 503. */
  policy: 'fail' | 'primary';
  /** How long a query with X-Codex-Min-Position waits for the replica's projections. */
  maxWaitMs: number;
}

export function readConfig(env: Env = process.env): ReadConfig {
  const policy = env.CODEXK8S_READ_FALLBACK?.trim() || 'primary';
  if (policy !== 'fail' && policy !== 'primary') throw new ConfigError('CODEXK8S_READ_FALLBACK must be "primary" or "fail"');
  return { policy, maxWaitMs: integer(env, 'CODEXK8S_READ_WAIT_MS', 2000, 0, 60_000) };
}

export interface HttpConfig {
  port: number;
  /** The current secret first, then previous ones still accepted during a rotation. */
  webhookSecrets: string[];
  learningModeDefault: boolean;
  /** Verified deliveries per second the ingress accepts, all senders together, before answering 429. */
  webhookRateLimit: number;
  /** Requests that fail verification, per second per source address, before that address gets 429. */
  webhookUnverifiedRateLimit: number;
  /**
   * CODEXK8S_TRUSTED_PROXY_HOPS: how many proxies in front of `serve` append to X-Forwarded-For
   * (0: the socket's address). Only that many entries from the right are believed.
   */
  trustedProxyHops: number;
  /** Label → agent map (JSON); the default is run:dev on issues and run:dev:revise on PRs. */
  triggerLabels: string | undefined;
}

export function httpConfig(env: Env = process.env, parseLearningMode: (raw: string | undefined) => boolean): HttpConfig {
  const current = required(env, 'CODEXK8S_GITHUB_WEBHOOK_SECRET');
  const previous = (env.CODEXK8S_GITHUB_WEBHOOK_PREVIOUS_SECRETS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  let learningModeDefault: boolean;
  try {
    learningModeDefault = parseLearningMode(env.CODEXK8S_LEARNING_MODE_DEFAULT);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return {
    port: integer(env, 'CODEXK8S_HTTP_PORT', 8080, 0, 65535),
    webhookSecrets: [current, ...previous],
    learningModeDefault,
    webhookRateLimit: integer(env, 'CODEXK8S_WEBHOOK_RATE_LIMIT', 2000, 1, 1_000_000),
    webhookUnverifiedRateLimit: integer(env, 'CODEXK8S_WEBHOOK_UNVERIFIED_RATE_LIMIT', 20, 1, 1_000_000),
    trustedProxyHops: integer(env, 'CODEXK8S_TRUSTED_PROXY_HOPS', 0, 0, 10),
    triggerLabels: env.CODEXK8S_TRIGGER_LABELS?.trim() || undefined,
  };
}

export interface GithubConfig {
  /** GitHub's REST API (CODEXK8S_GITHUB_API_URL), where names are turned into numeric ids. */
  apiUrl: string;
}

export function githubConfig(env: Env = process.env): GithubConfig {
  const raw = env.CODEXK8S_GITHUB_API_URL?.trim() || 'https://api.github.com';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('CODEXK8S_GITHUB_API_URL is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('CODEXK8S_GITHUB_API_URL must be an http(s) URL');
  return { apiUrl: raw };
}

/** A duration setting: whole seconds, or a number with s, m or h (`90s`, `30m`, `1h`). */
export function duration(env: Env, name: string, fallbackSeconds: number, minSeconds = 0, maxSeconds = 7 * 24 * 3600): number {
  const raw = env[name]?.trim();
  if (!raw) return fallbackSeconds;
  const m = /^(\d+)(s|m|h)?$/.exec(raw);
  if (!m) throw new ConfigError(`${name} must be a duration like 90s, 30m or 1h`);
  const seconds = Number(m[1]) * ({ s: 1, m: 60, h: 3600 } as const)[(m[2] ?? 's') as 's' | 'm' | 'h'];
  if (seconds < minSeconds || seconds > maxSeconds) throw new ConfigError(`${name} must be between ${minSeconds} and ${maxSeconds} seconds`);
  return seconds;
}

export interface RunsConfig {
  /** CODEXK8S_SLOTS_PER_PROJECT: runs of one project at once (2). */
  slotsPerProject: number;
  /** CODEXK8S_RUN_DEADLINE: the longest a run may take (1h). */
  runDeadlineSeconds: number;
  /** CODEXK8S_SLOT_LEASE: how long a slot's lease lasts unless renewed (10m); runs alive are renewed every re-list (30 s). */
  slotLeaseSeconds: number;
}

export function runsConfig(env: Env = process.env): RunsConfig {
  return {
    slotsPerProject: integer(env, 'CODEXK8S_SLOTS_PER_PROJECT', 2, 1, 100),
    runDeadlineSeconds: duration(env, 'CODEXK8S_RUN_DEADLINE', 3600, 60),
    slotLeaseSeconds: duration(env, 'CODEXK8S_SLOT_LEASE', 600, 60),
  };
}

export interface StaffApiConfig {
  /** CODEXK8S_JWT_KEYS: `kid:base64` secrets of at least 32 bytes; the first signs, all verify. */
  jwtKeys: KeyRing;
  /** CODEXK8S_JWT_TTL: a staff token's lifetime (15m). */
  jwtTtlSeconds: number;
  /** CODEXK8S_EMAIL_HASH_KEY: the key of the allow-list's e-mail hashes. */
  emailHashKey: Buffer;
  /** CODEXK8S_TOKEN_ENCRYPTION_KEYS: repository tokens at rest; unset, repositories connect without a token only. */
  tokenKeys: KeyRing | undefined;
  /** GitHub sign-in (CODEXK8S_GITHUB_OAUTH_*); unset, staff get tokens from `codex-k8s auth token` only. */
  oauth: { url: string; clientId: string; clientSecret: string } | undefined;
  /** CODEXK8S_PUBLIC_URL: the platform's address as browsers reach it (the OAuth callback's base). */
  publicUrl: string | undefined;
  /** CODEXK8S_BOOTSTRAP_OWNER_EMAIL: allowed as a platform owner at start, if nobody has that e-mail yet. */
  bootstrapOwnerEmail: string | undefined;
  /** CODEXK8S_API_RATE_LIMIT: staff requests per minute per user (600). */
  requestsPerMinute: number;
  /** CODEXK8S_LOGIN_RATE_LIMIT: logins per minute per address (30). */
  loginsPerMinute: number;
}

function httpUrl(env: Env, name: string, fallback: string | undefined): string | undefined {
  const raw = env[name]?.trim() || fallback;
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${name} must be an http(s) URL`);
  return raw.replace(/\/+$/, '');
}

/** CODEXK8S_TOKEN_ENCRYPTION_KEYS, when set: the keys repository tokens are sealed and opened with. */
export function tokenKeysConfig(env: Env = process.env): KeyRing | undefined {
  return env.CODEXK8S_TOKEN_ENCRYPTION_KEYS?.trim() ? parseKeyRing('CODEXK8S_TOKEN_ENCRYPTION_KEYS', env.CODEXK8S_TOKEN_ENCRYPTION_KEYS, { exactBytes: 32 }) : undefined;
}

export function staffApiConfig(env: Env = process.env): StaffApiConfig {
  const clientId = env.CODEXK8S_GITHUB_OAUTH_CLIENT_ID?.trim();
  const clientSecret = env.CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET?.trim();
  if (Boolean(clientId) !== Boolean(clientSecret)) {
    throw new ConfigError(clientId ? 'CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET is not set (CODEXK8S_GITHUB_OAUTH_CLIENT_ID is)' : 'CODEXK8S_GITHUB_OAUTH_CLIENT_ID is not set (CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET is)');
  }
  const bootstrapOwnerEmail = env.CODEXK8S_BOOTSTRAP_OWNER_EMAIL?.trim() || undefined;
  if (bootstrapOwnerEmail !== undefined && !isEmail(bootstrapOwnerEmail)) throw new ConfigError('CODEXK8S_BOOTSTRAP_OWNER_EMAIL is not an e-mail address');
  return {
    jwtKeys: parseKeyRing('CODEXK8S_JWT_KEYS', env.CODEXK8S_JWT_KEYS, { minBytes: 32 }),
    jwtTtlSeconds: duration(env, 'CODEXK8S_JWT_TTL', 900, 60, 24 * 3600),
    emailHashKey: parseKeyRing('CODEXK8S_EMAIL_HASH_KEY', env.CODEXK8S_EMAIL_HASH_KEY, { minBytes: 32 }).current.key,
    tokenKeys: tokenKeysConfig(env),
    oauth: clientId && clientSecret ? { url: httpUrl(env, 'CODEXK8S_GITHUB_OAUTH_URL', 'https://github.com')!, clientId, clientSecret } : undefined,
    publicUrl: httpUrl(env, 'CODEXK8S_PUBLIC_URL', undefined),
    bootstrapOwnerEmail,
    requestsPerMinute: integer(env, 'CODEXK8S_API_RATE_LIMIT', 600, 1, 1_000_000),
    loginsPerMinute: integer(env, 'CODEXK8S_LOGIN_RATE_LIMIT', 30, 1, 1_000_000),
  };
}
