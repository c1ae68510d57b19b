/** Thrown by deciders and command handlers; transports map its code to the API's error model. */
export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly code: 'not_found' | 'conflict' | 'failed_precondition' | 'invalid_argument' | 'unauthorized' | 'forbidden',
    message: string,
  ) {
    super(message);
  }
}
