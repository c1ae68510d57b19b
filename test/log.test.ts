import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../adapters/log.js';
import { ConfigError } from '../adapters/config.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ destination, level: 'debug' }) };
}

describe('the logger redacts by itself', () => {
  it('drops secrets, tokens and e-mails from fields at any depth and from messages', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        correlation_id: 'delivery-1',
        user: { email: 'ada@example.com', login: 'ada' },
        headers: { authorization: 'Bearer abc.def.ghi', 'x-hub-signature-256': 'sha256=' + 'a'.repeat(64) },
        repo: { token: 'ghp_' + 'x'.repeat(36) },
        note: 'mail bob@example.org with github_pat_' + 'y'.repeat(30),
        url: 'postgres://app:s3cretpass@db:5432/x',
      },
      'sent to carol@example.net using sk-' + 'z'.repeat(40),
    );
    const out = lines.join('');
    for (const leaked of ['ada@example.com', 'bob@example.org', 'carol@example.net', 'abc.def.ghi', 'ghp_', 'github_pat_', 'sk-zzz', 'aaaaaaaaaaaaaaaaaaaa', 's3cretpass']) {
      assert.ok(!out.includes(leaked), `${leaked} leaked: ${out}`);
    }
    const record = JSON.parse(out) as Record<string, unknown>;
    assert.equal(record.correlation_id, 'delivery-1');
    assert.deepEqual(record.user, { email: '[redacted]', login: 'ada' });
    assert.match(String(record.msg), /^sent to \[redacted\] using \[redacted\]$/);
  });

  it('keeps errors readable without their secrets', () => {
    const { lines, logger } = capture();
    logger.error({ err: new Error('login failed for eve@example.com') }, 'oops');
    const out = lines.join('');
    assert.ok(!out.includes('eve@example.com'), out);
    const record = JSON.parse(out) as { err: { message: string; type: string } };
    assert.equal(record.err.type, 'Error');
    assert.equal(record.err.message, 'login failed for [redacted]');
  });
});

describe('the log settings (found by a review: a bad level was an unexpected error naming no setting, a bad format was taken as json)', () => {
  const withEnv = (env: Record<string, string>, work: () => void) => {
    const before = { level: process.env.CODEXK8S_LOG_LEVEL, format: process.env.CODEXK8S_LOG_FORMAT };
    Object.assign(process.env, env);
    try {
      work();
    } finally {
      for (const [k, v] of [['CODEXK8S_LOG_LEVEL', before.level], ['CODEXK8S_LOG_FORMAT', before.format]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  for (const level of ['verbose', 'inf0', '5']) {
    it(`CODEXK8S_LOG_LEVEL=${level} is refused, naming the setting`, () => {
      withEnv({ CODEXK8S_LOG_LEVEL: level }, () => assert.throws(() => createLogger({ destination: new Writable({ write: (_c, _e, done) => done() }) }), (e: Error) => e instanceof ConfigError && e.message.startsWith('CODEXK8S_LOG_LEVEL')));
    });
  }
  for (const format of ['yaml', 'jsonl']) {
    it(`CODEXK8S_LOG_FORMAT=${format} is refused, naming the setting`, () => {
      withEnv({ CODEXK8S_LOG_FORMAT: format }, () => assert.throws(() => createLogger(), (e: Error) => e instanceof ConfigError && e.message.startsWith('CODEXK8S_LOG_FORMAT')));
    });
  }
  it('an empty or padded level or format is taken like every other setting: trimmed, empty meaning the default', () => {
    for (const [level, expected] of [['', 'info'], [' debug ', 'debug'], ['WARN', 'warn']]) {
      withEnv({ CODEXK8S_LOG_LEVEL: level!, CODEXK8S_LOG_FORMAT: ' JSON ' }, () => assert.equal(createLogger().level, expected));
    }
  });
});
