import * as t from 'io-ts';
import { IsoTime } from '../shared/codec.js';
import type { EventsOf } from '../shared/decider.js';

/**
 * A GitHub login's `state` was used: its stream (`oauth_state-<id>`) must not exist yet, so a state
 * works once, on whichever pod the callback reaches. Nothing else of the login is recorded here.
 */
export const OAuthStateRedeemed = t.type({ redeemedAt: IsoTime });

export const authEventCodecs = { OAuthStateRedeemed };
export type AuthEvent = EventsOf<typeof authEventCodecs>;
