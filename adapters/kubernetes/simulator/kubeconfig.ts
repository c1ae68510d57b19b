/** A kubeconfig (YAML) for a simulator at `url`: plain HTTP, no credentials, namespace `default`. */
export function kubeconfigFor(url: string): string {
  const name = 'codex-k8s-simulator';
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${url}`,
    // There is no TLS to verify; @kubernetes/client-node refuses an http:// server without this flag.
    '    insecure-skip-tls-verify: true',
    'users:',
    `- name: ${name}`,
    '  user: {}',
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${name}`,
    '    namespace: default',
    `current-context: ${name}`,
    '',
  ].join('\n');
}
