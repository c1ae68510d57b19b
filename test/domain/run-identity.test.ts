import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { manualRunIdOf, runIdOf } from '../../domain/webhooks/run-identity.js';

const labelling = { repository: 'github/Codertocat/Hello-World', number: 1, label: 'run:dev', labeledAt: '2019-05-15T15:20:33Z' };

describe('runIdOf: a labelling names its run', () => {
  it('the same labelling always names the same run, as a version 5 UUID', () => {
    assert.equal(runIdOf(labelling), runIdOf({ ...labelling }));
    assert.match(runIdOf(labelling), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  const changes: [string, Partial<typeof labelling>][] = [
    ['another repository', { repository: 'github/Codertocat/Other' }],
    ['another issue', { number: 2 }],
    ['another label', { label: 'run:dev:revise' }],
    ['a later labelling of the same issue', { labeledAt: '2019-05-15T15:20:34Z' }],
    ['the labelling after a removal, in the same second', { labelling: 1 } as Partial<typeof labelling>],
  ];
  for (const [what, change] of changes) {
    it(`${what} names another run`, () => {
      assert.notEqual(runIdOf({ ...labelling, ...change }), runIdOf(labelling));
    });
  }
});

describe('runIdOf: the first labelling keeps the name it had before labellings were counted', () => {
  it('labelling 0 names the run the labelling named without it', () => {
    assert.equal(runIdOf({ ...labelling, labelling: 0 }), runIdOf(labelling));
  });
});

describe('manualRunIdOf: a correlation id names a run in its project', () => {
  const P = '00000000-0000-4000-8000-000000000001';
  it('the same key in the same project is the same run', () => assert.equal(manualRunIdOf(P, 'k-1'), manualRunIdOf(P.toUpperCase(), 'k-1')));
  it('another key is another run', () => assert.notEqual(manualRunIdOf(P, 'k-1'), manualRunIdOf(P, 'k-2')));
  it('the same key in another project is another run', () => assert.notEqual(manualRunIdOf(P, 'k-1'), manualRunIdOf('00000000-0000-4000-8000-000000000002', 'k-1')));
});
