import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { projectRoot } from '../adapters/paths.js';

// The images (deploy/Dockerfile, deploy/agent/Dockerfile) keep only `dependencies` (`npm prune
// --omit=dev`) beside dist/ and bin/. No Docker engine runs where the tests run, so this checks the
// property the images rely on instead: every package the shipped code imports is a runtime dependency.
const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const shipped = ['bin', 'dist/adapters', 'dist/commands', 'dist/domain', 'dist/ports', 'dist/projections', 'dist/queries'];

function files(dir: string): string[] {
  return readdirSync(join(projectRoot, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name));
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for a relative path or a builtin. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || builtinModules.includes(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every module a file imports, statically or dynamically, as TypeScript's own scanner reads it. */
const importsOf = (file: string): string[] => ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);

describe('the images\' runtime dependencies', () => {
  const all = shipped.flatMap(files);

  it('finds the shipped code and its imports', () => {
    assert.ok(all.length > 50, `only ${all.length} files`);
    assert.ok(all.flatMap(importsOf).map(packageOf).includes('@kubernetes/client-node'));
  });

  it('every package the shipped code imports is in dependencies, none only in devDependencies', () => {
    const missing: string[] = [];
    for (const file of all) {
      for (const name of importsOf(file).map(packageOf)) {
        if (name && !(name in pkg.dependencies)) missing.push(`${relative(projectRoot, file)} imports ${name}${name in pkg.devDependencies ? ' (a devDependency)' : ''}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('the agent image carries the agents\' instructions where the agent step reads them (under /app, as in the checkout)', () => {
    const dockerfile = readFileSync(join(projectRoot, 'deploy', 'agent', 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^WORKDIR \/app$/m);
    assert.match(dockerfile, /^COPY --from=build \/app\/deploy\/agent\/instructions deploy\/agent\/instructions$/m);
    for (const mode of ['run', 'revise']) assert.ok(existsSync(join(projectRoot, 'deploy', 'agent', 'instructions', `default.${mode}.md`)), `default.${mode}.md`);
  });

  it('no shipped file imports the tests or the benchmarks', () => {
    const reaching = all.filter((file) => importsOf(file).some((s) => s.startsWith('.') && /\/(test|bench)\//.test(join(file, '..', s))));
    assert.deepEqual(reaching.map((f) => relative(projectRoot, f)), []);
  });
});
