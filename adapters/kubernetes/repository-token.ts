import type { EventStore } from '../../ports/event-store.js';
import { streamOf } from '../../domain/shared/streams.js';
import { ConfigError } from '../config.js';
import type { TokenCipher } from '../crypto/token-cipher.js';

/**
 * A repository's token for a run's Secret, decrypted at launch from the project's stream: its newest
 * ciphertext, since `keys rotate` seals it again and the key that sealed the first one may be gone.
 */
export function repositoryTokens(store: Pick<EventStore, 'readStream'>, cipher: TokenCipher | undefined) {
  return async (projectId: string, repositoryId: string | undefined): Promise<string | null> => {
    if (!repositoryId) return null;
    const sealed = (await store.readStream(streamOf.project(projectId))).findLast(
      (e) => (e.type === 'RepositoryConnected' || e.type === 'RepositoryTokenReencrypted') && e.data.repositoryId === repositoryId,
    );
    const ciphertext = sealed?.type === 'RepositoryConnected' || sealed?.type === 'RepositoryTokenReencrypted' ? sealed.data.tokenCiphertext : null;
    if (!ciphertext) return null;
    if (!cipher) throw new ConfigError('CODEXK8S_TOKEN_ENCRYPTION_KEYS is not set: the repository token cannot be decrypted');
    return cipher.decrypt(ciphertext, repositoryId);
  };
}
