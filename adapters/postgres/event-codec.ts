import { decodeOrThrow, ValidationError } from '../../domain/shared/codec.js';
import { eventCodecs, type DomainEvent } from '../../domain/events.js';
import { EventDecodeError, type RawEvent, type RecordedEvent } from '../../ports/event-store.js';

/** A stored event checked against its codec: an unknown type or a malformed payload is an error, never a skip. */
export function decodeEvent(raw: RawEvent): RecordedEvent<DomainEvent> {
  const codec = (eventCodecs as Record<string, (typeof eventCodecs)[keyof typeof eventCodecs] | undefined>)[raw.type];
  if (!codec) throw new EventDecodeError(raw, `unknown event type ${JSON.stringify(raw.type)}`);
  try {
    return { ...raw, data: decodeOrThrow(codec, raw.data, `${raw.type} payload`) } as RecordedEvent<DomainEvent>;
  } catch (error) {
    throw new EventDecodeError(raw, error instanceof ValidationError ? error.message : String(error));
  }
}

/** An event's payload as it is stored, after checking it against its codec. */
export function encodeEvent(event: DomainEvent): unknown {
  const codec = (eventCodecs as Record<string, (typeof eventCodecs)[keyof typeof eventCodecs] | undefined>)[event.type];
  if (!codec) throw new ValidationError('event', [`unknown event type ${JSON.stringify(event.type)}`]);
  decodeOrThrow(codec, event.data, `${event.type} payload`);
  return codec.encode(event.data as never);
}
