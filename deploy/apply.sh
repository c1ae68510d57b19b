#!/usr/bin/env bash
# Deploys an overlay at an image tag into the cluster kubectl points at: renders it, runs the
# migration Job (as the database owner) and waits for it, then rolls the Deployments and waits.
# Usage: CODEXK8S_IMAGE_REGISTRY=<registry/owner> CODEXK8S_PUBLIC_HOST=<domain> CODEXK8S_ACME_EMAIL=<e-mail> \
#          [CODEXK8S_APPLY_SCOPE=all|namespaced|cluster] deploy/apply.sh <staging|production> <image-tag>
# (where the images codex-k8s and codex-k8s-agent were pushed, e.g. ghcr.io/your-org; the domain
# the webhook and the staff API answer on; the e-mail Let's Encrypt registers).
# The scope: `all` (the default, as a cluster admin); `namespaced`, what the deploy workflows do:
# everything but the cluster-wide objects (label codex-k8s.io/scope=cluster: the namespace, the
# worker's ClusterRole and binding, the ACME issuer), which their runner has no right to change;
# `cluster`, what the bootstrap does as a cluster admin: only those (no tag needed, nothing rolls).
set -euo pipefail
# shellcheck source=deploy/checks.sh
. "$(dirname "$0")/checks.sh"

usage="usage: deploy/apply.sh <staging|production> <image-tag>"
scope="${CODEXK8S_APPLY_SCOPE:-all}"
case "$scope" in
  all | namespaced | cluster) ;;
  *) echo "deploy/apply.sh: CODEXK8S_APPLY_SCOPE must be all, namespaced or cluster, not $scope" >&2; exit 2 ;;
esac
overlay="${1:?$usage}"
if [ "$scope" = cluster ]; then tag="${2:-unused}"; else tag="${2:?$usage}"; fi
case "$overlay" in
  staging) namespace=codex-k8s-staging ;;
  production) namespace=codex-k8s ;;
  *) echo "deploy/apply.sh: unknown overlay $overlay" >&2; exit 2 ;;
esac
if ! is_tag "$tag"; then
  echo "deploy/apply.sh: not an image tag: $tag" >&2
  exit 2
fi
registry="${CODEXK8S_IMAGE_REGISTRY:-}"
host="${CODEXK8S_PUBLIC_HOST:-}"
email="${CODEXK8S_ACME_EMAIL:-}"
if ! is_registry "$registry"; then
  echo "deploy/apply.sh: CODEXK8S_IMAGE_REGISTRY must be where the images were pushed, lower case, e.g. ghcr.io/your-org (it is '${registry}')" >&2
  exit 2
fi
if ! is_domain "$host"; then
  echo "deploy/apply.sh: CODEXK8S_PUBLIC_HOST must be the domain the platform answers on (it is '${host}')" >&2
  exit 2
fi
if [[ ! "$email" =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]]; then
  echo "deploy/apply.sh: CODEXK8S_ACME_EMAIL must be the e-mail Let's Encrypt registers the certificate under" >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The overlay at this tag from this registry, on this host, without editing the checkout (kustomize
# takes a relative path only). The agent image is the one built with the platform's.
cat > "$work/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$work" "$root/deploy/overlays/$overlay")
images:
  - name: codex-k8s
    newName: "$registry/codex-k8s"
    newTag: "$tag"
patches:
  - target: { kind: ConfigMap, name: codex-k8s-config }
    patch: |-
      - op: replace
        path: /data/CODEXK8S_AGENT_IMAGE
        value: "$registry/codex-k8s-agent:$tag"
      - op: add
        path: /data/CODEXK8S_PUBLIC_URL
        value: "https://$host"
  - target: { kind: Ingress, name: codex-k8s }
    patch: |-
      - op: replace
        path: /spec/rules/0/host
        value: "$host"
      - op: replace
        path: /spec/tls/0/hosts/0
        value: "$host"
  - target: { kind: ClusterIssuer }
    patch: |-
      - op: replace
        path: /spec/acme/email
        value: "$email"
YAML
kubectl kustomize "$work" > "$work/rendered.yaml"

if [ "$scope" = cluster ]; then
  kubectl apply -f "$work/rendered.yaml" --selector codex-k8s.io/scope=cluster
  exit 0
fi
# The deploy workflows leave the cluster-wide objects to a cluster admin (the bootstrap).
only=""
if [ "$scope" = namespaced ]; then only="codex-k8s.io/scope!=cluster,"; fi

# Migrations first: a Job is immutable, so the previous one goes.
kubectl -n "$namespace" delete job codex-k8s-migrate --ignore-not-found
kubectl apply -f "$work/rendered.yaml" --selector "${only}app.kubernetes.io/component!=api,app.kubernetes.io/component!=worker"
# Waits for it to succeed, and stops at once if it failed (its backoffLimit spent) instead of at the timeout.
for _ in $(seq 120); do
  succeeded="$(kubectl -n "$namespace" get job codex-k8s-migrate -o jsonpath='{.status.succeeded}')"
  failed="$(kubectl -n "$namespace" get job codex-k8s-migrate -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')"
  if [ "${succeeded:-0}" -ge 1 ]; then break; fi
  if [ "$failed" = True ]; then
    echo "deploy/apply.sh: the migration Job failed; see kubectl -n $namespace logs job/codex-k8s-migrate" >&2
    exit 1
  fi
  sleep 5
done
if [ "${succeeded:-0}" -lt 1 ]; then
  echo "deploy/apply.sh: the migration Job did not finish in 10 minutes" >&2
  exit 1
fi

# Then the platform rolls.
if [ -n "$only" ]; then kubectl apply -f "$work/rendered.yaml" --selector "${only%,}"; else kubectl apply -f "$work/rendered.yaml"; fi
kubectl -n "$namespace" rollout status deployment/codex-k8s-api --timeout=600s
kubectl -n "$namespace" rollout status deployment/codex-k8s-worker --timeout=600s
