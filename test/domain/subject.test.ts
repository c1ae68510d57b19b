import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideSubject, evolveSubject, initialSubject, lastRemovalOf, labellingOf, type Subject, type SubjectCommand } from '../../domain/runs/subject.js';
import type { SubjectEvent } from '../../domain/runs/events.js';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const given = (events: SubjectEvent[]): Subject => events.reduce(evolveSubject, initialSubject);
const ran = (runId: string, labeledAt?: string): SubjectEvent => ({ type: 'SubjectRunRequested', data: { runId, label: 'run:dev', agent: 'dev', ...(labeledAt ? { labeledAt } : {}) } });
const removed = (at: string | null): SubjectEvent => ({ type: 'SubjectLabelRemoved', data: { label: 'run:dev', at } });
const T1 = '2026-11-29T10:00:01Z';
const T2 = '2026-11-29T10:00:02Z';

// given (events) / when (command) / then (events)
const table: [string, SubjectEvent[], SubjectCommand, SubjectEvent[]][] = [
  ['a run is recorded with its labelling time', [], { type: 'RecordRun', runId: A, label: 'run:dev', agent: 'dev', labeledAt: T1 }, [ran(A, T1)]],
  ['a run recorded already is not recorded again', [ran(A, T1)], { type: 'RecordRun', runId: A, label: 'run:dev', agent: 'dev', labeledAt: T1 }, []],
  ['a removal is recorded', [ran(A, T1)], { type: 'RecordLabelRemoved', label: 'run:dev', at: T1 }, [removed(T1)]],
  ['the same removal through another hook is not recorded twice', [ran(A, T1), removed(T1)], { type: 'RecordLabelRemoved', label: 'run:dev', at: T1 }, []],
  ['a copy of a removal after a labelling since is not recorded again (found by a review: it moved the next labelling\'s name, so a copy of that labelling started a second run)', [ran(A, T1), removed(T1), ran(B, T2)], { type: 'RecordLabelRemoved', label: 'run:dev', at: T1 }, []],
  ['a removal without a time is recorded each time', [removed(null)], { type: 'RecordLabelRemoved', label: 'run:dev', at: null }, [removed(null)]],
  ['a removal with nothing labelled before it (deliveries out of order) is recorded', [], { type: 'RecordLabelRemoved', label: 'run:dev', at: T2 }, [removed(T2)]],
];

describe('the subject decider', () => {
  for (const [name, events, command, then] of table) {
    it(name, () => assert.deepEqual(decideSubject(command, given(events)), then));
  }

  it('counts the labellings of a label by the removals at or before it, each time once', () => {
    assert.equal(labellingOf(given([]), 'run:dev', T1), 0);
    assert.equal(labellingOf(given([ran(A, T1), removed(T1)]), 'run:dev', T1), 1, 'put back in the second it was taken off');
    assert.equal(labellingOf(given([ran(A, T1), removed(T2)]), 'run:dev', T1), 0, 'a removal after it does not count (a late copy of the first labelling)');
    assert.equal(labellingOf(given([ran(A, T1), removed(T1), removed(T1)]), 'run:dev', T2), 1, 'a copy of a removal counts once');
    assert.equal(labellingOf(given([removed(null)]), 'run:dev', T1), 1, 'a removal without a time counts');
    assert.equal(labellingOf(given([ran(A, T1), removed(T1)]), 'run:dev:revise', T1), 0, 'per label');
  });

  it('keeps the latest removal time, whatever order removals come in', () => {
    assert.equal(lastRemovalOf(given([removed(T2), removed(T1)]), 'run:dev'), T2);
    assert.equal(lastRemovalOf(given([removed(T1), removed(null)]), 'run:dev'), T1);
    assert.equal(lastRemovalOf(given([removed(null)]), 'run:dev'), null);
  });

  it('reads a run recorded before labelling times were kept', () => {
    assert.deepEqual(given([ran(A)]).runs, [{ runId: A, label: 'run:dev', labeledAt: null }]);
  });
});
