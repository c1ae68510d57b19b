import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../adapters/paths.js';

/** A tool the test setup fetched from Debian's archive (`.codexk8s/tools`); undefined when it could not. */
export function toolPath(name: 'kubectl' | 'shellcheck'): string | undefined {
  const path = join(projectRoot, '.codexk8s', 'tools', name);
  return existsSync(path) ? path : undefined;
}

/** Debian trixie's kubectl as the test setup fetched it. */
export const kubectlPath = () => toolPath('kubectl');
