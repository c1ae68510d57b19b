import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../adapters/log.js';

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
