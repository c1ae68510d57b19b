import { stringify } from 'yaml';
import { runObjects } from '../../adapters/kubernetes/run-objects.js';

/**
 * The objects of one run as the launcher makes them, with the settings' defaults, as YAML: the
 * README's example of each (a test keeps the two the same). The Secrets hold placeholders here.
 */
export function runObjectsExample(): string {
  const { namespace, objects } = runObjects(
    {
      runId: '0b7c3f52-5a1e-4c8e-9d41-2f6a8e1c9b10', projectId: '6f1d2c4b-8e3a-4b7f-a2c5-9d0e1f3a4b5c', agent: 'dev', issue: 42, installation: 'c1f0e9d2-7b3a-4c5d-8e6f-0a1b2c3d4e5f',
      image: 'registry.example/codex-k8s-agent:1.0.0', deadlineSeconds: 3600, ttlAfterFinishedSeconds: 86_400,
      quota: { cpu: '2', memory: '4Gi', pods: 3 }, egressPorts: [443],
      runner: { repository: 'octo/hello', subjectKind: 'issue', issueBodySha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', learningMode: false, githubApiUrl: 'https://api.github.com' },
    },
    { openaiKey: '<the OpenAI key>', repositoryToken: '<the repository token, decrypted at launch>' },
  );
  return [namespace, ...objects].map((o) => stringify(JSON.parse(JSON.stringify(o)), { lineWidth: 0 }).trimEnd()).join('\n---\n');
}
