import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../adapters/paths.js';

/** Debian trixie's kubectl as the test setup fetched it (`.codexk8s/tools`); undefined when it could not. */
export function kubectlPath(): string | undefined {
  const path = join(projectRoot, '.codexk8s', 'tools', 'kubectl');
  return existsSync(path) ? path : undefined;
}
