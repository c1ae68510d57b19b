import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { naturalBatching } from '../adapters/postgres/natural-batching.js';

type Request = { id: string; written: string[]; guarded?: string[]; weight?: number };

/** A group commit whose statements are held open until `release`, recording what each batch held. */
function recording(maxInFlight: number, maxWeight = 100) {
  const batches: string[][] = [];
  const open: (() => void)[] = [];
  const submit = naturalBatching<Request, string>({
    maxInFlight,
    maxWeight,
    weight: (r) => r.weight ?? 1,
    streams: (r) => ({ written: r.written, guarded: r.guarded ?? [] }),
    run: (batch) => {
      batches.push(batch.map((r) => r.id));
      return new Promise((resolve) => open.push(() => resolve(batch.map((r) => (r.id === 'bad' ? { status: 'rejected', reason: new Error('bad') } : { status: 'fulfilled', value: `done ${r.id}` })))));
    },
  });
  const releaseAll = async () => {
    while (open.length > 0) {
      open.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { submit, batches, releaseAll };
}

describe('natural batching (group commit)', () => {
  it('sends a lone request at once, and what arrives meanwhile together in the next statement', async () => {
    const { submit, batches, releaseAll } = recording(1);
    const answers = ['a', 'b', 'c', 'd'].map((id) => submit({ id, written: [`s-${id}`] }));
    assert.deepEqual(batches, [['a']]);
    await releaseAll();
    assert.deepEqual(batches, [['a'], ['b', 'c', 'd']]);
    assert.deepEqual(await Promise.all(answers), ['done a', 'done b', 'done c', 'done d']);
  });

  it('keeps up to maxInFlight statements going', async () => {
    const { submit, batches, releaseAll } = recording(2);
    const answers = ['a', 'b', 'c'].map((id) => submit({ id, written: [`s-${id}`] }));
    assert.deepEqual(batches, [['a'], ['b']]);
    await releaseAll();
    assert.deepEqual(batches, [['a'], ['b'], ['c']]);
    await Promise.all(answers);
  });

  const cases: [string, Request[], string[][]][] = [
    ['a stream written twice goes in two statements, in order', [{ id: 'x', written: ['s'] }, { id: 'y', written: ['s'] }, { id: 'z', written: ['t'] }], [['x', 'z'], ['y']]],
    ['guards of one stream share a statement', [{ id: 'x', written: ['a'], guarded: ['p'] }, { id: 'y', written: ['b'], guarded: ['p'] }], [['x', 'y']]],
    ['a stream one writes and another guards does not', [{ id: 'x', written: ['p'] }, { id: 'y', written: ['b'], guarded: ['p'] }], [['x'], ['y']]],
    ['nor the other way round', [{ id: 'x', written: ['b'], guarded: ['p'] }, { id: 'y', written: ['p'] }], [['x'], ['y']]],
    ['a statement is closed at maxWeight', [{ id: 'x', written: ['a'], weight: 60 }, { id: 'y', written: ['b'], weight: 60 }, { id: 'z', written: ['c'], weight: 40 }], [['x', 'z'], ['y']]],
    ['a request heavier than maxWeight still goes, alone', [{ id: 'x', written: ['a'], weight: 500 }, { id: 'y', written: ['b'] }], [['x'], ['y']]],
  ];
  for (const [what, requests, expected] of cases) {
    it(what, async () => {
      const { submit, batches, releaseAll } = recording(1);
      const first = submit({ id: 'first', written: ['busy'] }); // holds the one slot, so the rest queue up
      const answers = requests.map((r) => submit(r));
      await releaseAll();
      await Promise.all([first, ...answers]);
      assert.deepEqual(batches.slice(1), expected);
    });
  }

  it('settles each request with its own result or error', async () => {
    const { submit, releaseAll } = recording(1);
    const first = submit({ id: 'first', written: ['busy'] });
    const settled = Promise.allSettled([submit({ id: 'ok', written: ['a'] }), submit({ id: 'bad', written: ['b'] })]);
    await releaseAll();
    await first;
    const [ok, bad] = await settled;
    assert.deepEqual(ok, { status: 'fulfilled', value: 'done ok' });
    assert.equal(bad!.status, 'rejected');
  });
});
