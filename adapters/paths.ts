import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// This file compiles to dist/adapters/paths.js; the checkout is two levels up from there.
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const migrationsDir = join(projectRoot, 'migrations');
