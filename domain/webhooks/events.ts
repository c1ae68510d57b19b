import * as t from 'io-ts';
import { IsoTime, NonEmptyString } from '../shared/codec.js';

/**
 * One per GitHub delivery, in the stream `delivery-<X-GitHub-Delivery>` (which must not exist yet:
 * that is how a redelivery is refused). Safe context only: no signature, no secret, no e-mail.
 */
export const DeliveryDecided = t.intersection([t.type({
  guid: NonEmptyString,
  event: NonEmptyString,
  action: t.union([t.string, t.null]),
  repository: t.union([t.string, t.null]), // owner/name
  number: t.union([t.number, t.null]),
  label: t.union([t.string, t.null]),
  sender: t.union([t.string, t.null]), // GitHub login
  bodySha256: t.string,
  decision: t.keyof({ accepted: null, canceled: null, ignored: null }),
  reason: t.union([t.string, t.null]),
  runIds: t.array(t.string),
  receivedAt: IsoTime,
}),
  // GitHub's numeric ids of the repository and the sender (absent in decisions recorded before they were kept).
  t.partial({ repositoryId: t.union([t.number, t.null]), senderId: t.union([t.number, t.null]) }),
]);

export type DeliveryDecided = t.TypeOf<typeof DeliveryDecided>;

export const webhookEventCodecs = { DeliveryDecided };
