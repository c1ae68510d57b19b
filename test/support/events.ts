import { randomUUID } from 'node:crypto';
import type { DomainEvent } from '../../domain/events.js';
import type { EventMeta } from '../../adapters/postgres/event-store.js';

/** A valid RunRequested for the run `runId`: the event the log tests append. */
export function runRequested(runId: string = randomUUID(), projectId: string = randomUUID()): DomainEvent {
  return {
    type: 'RunRequested',
    data: {
      runId,
      projectId,
      agent: 'dev',
      repository: 'github/octo/hello',
      subject: { kind: 'issue', number: 7 },
      learningMode: false,
      requestedAt: '2026-11-27T10:00:00.000Z',
    },
  } as DomainEvent;
}

export function runFailed(runId: string, reason = 'timeout'): DomainEvent {
  return { type: 'RunFailed', data: { runId, reason, finishedAt: '2026-11-27T11:00:00.000Z' } } as DomainEvent;
}

export const systemMeta = (correlationId: string = randomUUID()): EventMeta => ({
  correlationId,
  actor: { type: 'system', id: 'test' },
});
