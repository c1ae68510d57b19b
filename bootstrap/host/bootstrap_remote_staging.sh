#!/usr/bin/env bash
# codex-k8s staging bootstrap, run from a developer's host.
#
#   bootstrap/host/bootstrap_remote_staging.sh --config bootstrap/host/config.env [--dry-run] [--mode host|cluster]
#       [--environment staging|production]
#
# host mode (default): over SSH as root onto a fresh Ubuntu 24.04 server: checks it, creates the
# operator user, closes the firewall but for 22/80/443, installs k3s (local-path storage),
# cert-manager, the platform's secrets (generated once, never printed), the GitHub Actions runner
# that deploys (in the cluster), and deploys the staging overlay. cluster mode: the same into an existing cluster by kubeconfig,
# touching no host. Every step is idempotent: a rerun after a failure goes on where it stopped.
# --dry-run prints the plan and connects to nothing. --environment production prepares and deploys
# the production overlay (namespace codex-k8s) instead of staging's, with the config's domain.
set -euo pipefail

CERT_MANAGER_VERSION="v1.16.2"
# The gha-runner-scale-set charts: scaleSetLabels since 0.14; the controller and the scale set at one version.
ARC_VERSION="0.14.2"

usage() {
  sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "bootstrap: $*" >&2
  exit 1
}

dry_run=0
config=""
mode=""
environment=staging
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --config) config="${2:-}"; shift ;;
    --mode) mode="${2:-}"; shift ;;
    --environment) environment="${2:-}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

[ -n "$config" ] || die "--config FILE is required (start from bootstrap/host/config.env.example)"
[ -r "$config" ] || die "cannot read $config"
set -a
# shellcheck source-path=SCRIPTDIR source=config.env.example
. "$config"
set +a
mode="${mode:-${CODEXK8S_BOOTSTRAP_MODE:-host}}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=deploy/checks.sh
. "$root/deploy/checks.sh"
case "$environment" in
  staging) NAMESPACE=codex-k8s-staging ;;
  production) NAMESPACE=codex-k8s ;;
  *) die "--environment must be staging or production, not $environment" ;;
esac
case "$mode" in
  host | cluster) ;;
  *) die "--mode must be host or cluster, not $mode" ;;
esac

require() {
  local name
  for name in "$@"; do
    [ -n "${!name:-}" ] || die "$name is not set in $config"
  done
}
require CODEXK8S_ACME_EMAIL CODEXK8S_GITHUB_REPOSITORY CODEXK8S_BOOTSTRAP_OWNER_EMAIL
[[ "$CODEXK8S_GITHUB_REPOSITORY" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "CODEXK8S_GITHUB_REPOSITORY is not owner/name"
if [ "$mode" = host ]; then
  # A staging server is reached by its domain (TLS by HTTP-01); an existing cluster may have none yet.
  require CODEXK8S_STAGING_HOST CODEXK8S_STAGING_DOMAIN CODEXK8S_OPERATOR_USER CODEXK8S_OPERATOR_PUBLIC_KEY_FILE
  [[ "$CODEXK8S_OPERATOR_USER" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "CODEXK8S_OPERATOR_USER is not a user name"
else
  require CODEXK8S_KUBECONFIG
fi
CODEXK8S_STAGING_DOMAIN="${CODEXK8S_STAGING_DOMAIN:-}"
[[ -z "$CODEXK8S_STAGING_DOMAIN" ]] || is_domain "$CODEXK8S_STAGING_DOMAIN" || die "CODEXK8S_STAGING_DOMAIN is not a lower-case domain name"
CODEXK8S_IMAGE_TAG="${CODEXK8S_IMAGE_TAG:-}"
[[ -z "$CODEXK8S_IMAGE_TAG" ]] || is_tag "$CODEXK8S_IMAGE_TAG" || die "CODEXK8S_IMAGE_TAG is not an image tag"
# Where the deploy workflow pushes the images: by default the repository owner's GitHub Container Registry.
owner="${CODEXK8S_GITHUB_REPOSITORY%%/*}"
CODEXK8S_IMAGE_REGISTRY="${CODEXK8S_IMAGE_REGISTRY:-ghcr.io/${owner,,}}"
is_registry "$CODEXK8S_IMAGE_REGISTRY" || die "CODEXK8S_IMAGE_REGISTRY is not a lower-case registry path (e.g. ghcr.io/your-org)"
CODEXK8S_RUNNER_LABELS="${CODEXK8S_RUNNER_LABELS:-[\"codex-k8s-deploy\"]}"
[[ "$CODEXK8S_RUNNER_LABELS" =~ ^\[\ *\"[A-Za-z0-9._-]+\"(\ *,\ *\"[A-Za-z0-9._-]+\")*\ *\]$ ]] || die "CODEXK8S_RUNNER_LABELS is not a JSON list of labels, e.g. [\"codex-k8s-deploy\"]"
# The runner is named by the first label, so a production cluster of its own gets a runner of its
# own; the name is a helm release and a Kubernetes name too, so lower case and short.
runner_labels="$(echo "$CODEXK8S_RUNNER_LABELS" | tr -d '[]" ')"
runner_name="${runner_labels%%,*}"
[[ "$runner_name" =~ ^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$ ]] || die "the first of CODEXK8S_RUNNER_LABELS names the runner: lower-case letters, digits and '-', at most 53 characters ($runner_name)"
if [ -n "${CODEXK8S_REGISTRY_USERNAME:-}" ] && [ -z "${CODEXK8S_REGISTRY_PASSWORD:-}" ]; then die "CODEXK8S_REGISTRY_PASSWORD is not set, but CODEXK8S_REGISTRY_USERNAME is"; fi
# The Ingress and its certificate need the domain, so there is no deploy without one.
if [ -n "$CODEXK8S_IMAGE_TAG" ] && [ -z "$CODEXK8S_STAGING_DOMAIN" ]; then die "CODEXK8S_STAGING_DOMAIN is needed to deploy (leave CODEXK8S_IMAGE_TAG empty to prepare the cluster only)"; fi
# An autoscaled runner scale set where there is a domain, one persistent runner where there is none, unless chosen.
if [ -n "$CODEXK8S_STAGING_DOMAIN" ]; then runner_kind="${CODEXK8S_RUNNER_KIND:-scale-set}"; else runner_kind="${CODEXK8S_RUNNER_KIND:-persistent}"; fi
case "$runner_kind" in
  scale-set | persistent) ;;
  *) die "CODEXK8S_RUNNER_KIND must be scale-set or persistent, not $runner_kind" ;;
esac


# A step: its number, name and what it does are the plan; without --dry-run it runs.
step_number=0
step() {
  local name="$1" what="$2"
  step_number=$((step_number + 1))
  if [ "$dry_run" = 1 ]; then
    printf '%2d. %-16s %s\n' "$step_number" "$name" "$what"
    return 0
  fi
  echo "bootstrap: step $step_number: $name" >&2
  "step_$name"
}

# A script runs on the target: over SSH as root (host mode), or here with the kubeconfig (cluster
# mode). It travels on stdin, never in argv, so what it carries shows in no process list.
on_target() {
  if [ "$mode" = host ]; then
    ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -p "${CODEXK8S_STAGING_SSH_PORT:-22}" "root@$CODEXK8S_STAGING_HOST" 'bash -s'
  else
    KUBECONFIG="$CODEXK8S_KUBECONFIG" bash -s
  fi
}
kube_env() {
  if [ "$mode" = host ]; then echo 'export KUBECONFIG=/etc/rancher/k3s/k3s.yaml'; fi
}
# A value as one single-quoted shell word, so whatever it holds ($, quotes, spaces) reaches the
# script on the target as it is.
quote() {
  local q="'"
  printf "'%s'" "${1//$q/$q\\$q$q}"
}
# The deploy/ folder where the target reads it: copied to the host (host mode), or this checkout's.
deploy_dir=/opt/codex-k8s/deploy
copied=0
copy_deploy() {
  if [ "$copied" = 1 ]; then return 0; fi
  copied=1
  if [ "$mode" = host ]; then
    tar -C "$root" -cz deploy | ssh -o BatchMode=yes -p "${CODEXK8S_STAGING_SSH_PORT:-22}" "root@$CODEXK8S_STAGING_HOST" \
      'rm -rf /opt/codex-k8s && mkdir -p /opt/codex-k8s && tar -C /opt/codex-k8s -xz'
  else
    deploy_dir="$root/deploy"
  fi
}

step_check_host() {
  local resolved os
  resolved="$(getent ahostsv4 "$CODEXK8S_STAGING_DOMAIN" | awk 'NR==1 {print $1}')" || true
  [ -n "$resolved" ] || die "$CODEXK8S_STAGING_DOMAIN does not resolve: point its A record at $CODEXK8S_STAGING_HOST first (TLS needs it)"
  local host_ip
  host_ip="$(getent ahostsv4 "$CODEXK8S_STAGING_HOST" | awk 'NR==1 {print $1}')" || true
  [ "$resolved" = "$host_ip" ] || die "$CODEXK8S_STAGING_DOMAIN resolves to $resolved, not to $CODEXK8S_STAGING_HOST ($host_ip)"
  # shellcheck disable=SC2016 # expanded on the host, not here
  os="$(printf '. /etc/os-release; echo "$ID $VERSION_ID"\n' | on_target)" || die "cannot reach root@$CODEXK8S_STAGING_HOST over SSH"
  [ "$os" = "ubuntu 24.04" ] || die "the host runs $os, not Ubuntu 24.04"
}

step_check_cluster() {
  KUBECONFIG="$CODEXK8S_KUBECONFIG" kubectl version >/dev/null || die "the cluster in $CODEXK8S_KUBECONFIG does not answer"
}

step_operator_user() {
  local key
  key="$(cat "$CODEXK8S_OPERATOR_PUBLIC_KEY_FILE")" || die "cannot read $CODEXK8S_OPERATOR_PUBLIC_KEY_FILE"
  [[ "$key" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256)\ [A-Za-z0-9+/=]+ ]] || die "$CODEXK8S_OPERATOR_PUBLIC_KEY_FILE is not an SSH public key"
  on_target <<EOF
set -euo pipefail
user='$CODEXK8S_OPERATOR_USER'
id -u "\$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups sudo "\$user"
install -d -m 700 -o "\$user" -g "\$user" "/home/\$user/.ssh"
touch "/home/\$user/.ssh/authorized_keys"
grep -qxF '$key' "/home/\$user/.ssh/authorized_keys" || echo '$key' >> "/home/\$user/.ssh/authorized_keys"
chown "\$user:\$user" "/home/\$user/.ssh/authorized_keys"; chmod 600 "/home/\$user/.ssh/authorized_keys"
printf 'PasswordAuthentication no\nPermitRootLogin prohibit-password\n' > /etc/ssh/sshd_config.d/10-codex-k8s.conf
systemctl reload ssh
EOF
}

step_firewall() {
  on_target <<'EOF'
set -euo pipefail
command -v ufw >/dev/null || apt-get install -y -q ufw
ufw default deny incoming
ufw default allow outgoing
ufw allow 22/tcp
ufw allow 80/tcp
ufw allow 443/tcp
# k3s's own pod and service networks reach the host (the API server, CoreDNS), as k3s requires.
ufw allow from 10.42.0.0/16
ufw allow from 10.43.0.0/16
ufw --force enable
EOF
}

step_k3s() {
  on_target <<'EOF'
set -euo pipefail
# k3s brings the local-path storage class and Traefik as the ingress controller.
if ! command -v k3s >/dev/null; then
  curl -sfL https://get.k3s.io | INSTALL_K3S_EXEC="--write-kubeconfig-mode 600" sh -
fi
export KUBECONFIG=/etc/rancher/k3s/k3s.yaml
until kubectl get storageclass local-path >/dev/null 2>&1; do sleep 2; done
EOF
}

step_cert_manager() {
  on_target <<EOF
set -euo pipefail
$(kube_env)
kubectl apply -f https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml >/dev/null
kubectl -n cert-manager rollout status deployment/cert-manager-webhook --timeout=300s
EOF
}

# The internal secrets, generated on the target once: a rerun keeps them (data encrypted with
# them, and hashes keyed by them, would be lost otherwise), and each is made only if it is missing,
# so a rerun after a failure between them goes on. The operator's own secrets (OpenAI key, OAuth
# client) are a Secret of their own, applied every run, so a value filled in later reaches the
# next rollout. Nothing here is echoed or logged; the operator's values travel inside the script on stdin.
step_secrets() {
  on_target <<EOF
set -euo pipefail
$(kube_env)
ns='$NAMESPACE'
kubectl get namespace "\$ns" >/dev/null 2>&1 || kubectl create namespace "\$ns" >/dev/null
kubectl label namespace "\$ns" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
hex() { openssl rand -hex "\$1"; }
b64() { openssl rand -base64 "\$1" | tr -d '\n'; }
exists() { kubectl -n "\$ns" get secret "\$1" >/dev/null 2>&1; }
if exists postgres-secrets; then
  echo "bootstrap: postgres-secrets exist: kept" >&2
else
  {
    echo "POSTGRES_PASSWORD=\$(hex 24)"
    echo "CODEXK8S_OWNER_PASSWORD=\$(hex 24)"
    echo "CODEXK8S_PLATFORM_PASSWORD=\$(hex 24)"
    echo "REPLICATION_PASSWORD=\$(hex 24)"
  } | kubectl -n "\$ns" create secret generic postgres-secrets --from-env-file=/dev/stdin >/dev/null
  echo "bootstrap: postgres-secrets generated and stored (not shown)" >&2
fi
if exists codex-k8s-secrets; then
  echo "bootstrap: codex-k8s-secrets exist: kept" >&2
else
  # The database URLs carry the passwords stored above, whichever run stored them.
  password() { kubectl -n "\$ns" get secret postgres-secrets -o "jsonpath={.data.\$1}" | base64 -d; }
  owner_password="\$(password CODEXK8S_OWNER_PASSWORD)"; platform_password="\$(password CODEXK8S_PLATFORM_PASSWORD)"
  {
    echo "CODEXK8S_DATABASE_URL=postgres://codexk8s:\$platform_password@postgres-primary:5432/codexk8s"
    echo "CODEXK8S_DATABASE_OWNER_URL=postgres://codexk8s_owner:\$owner_password@postgres-primary:5432/codexk8s"
    echo "CODEXK8S_DATABASE_REPLICA_URLS=postgres://codexk8s:\$platform_password@postgres-replica:5432/codexk8s"
    echo "CODEXK8S_JWT_KEYS=k1:\$(b64 32)"
    echo "CODEXK8S_TOKEN_ENCRYPTION_KEYS=k1:\$(b64 32)"
    echo "CODEXK8S_EMAIL_HASH_KEY=k1:\$(b64 32)"
    echo "CODEXK8S_GITHUB_WEBHOOK_SECRET=\$(hex 32)"
  } | kubectl -n "\$ns" create secret generic codex-k8s-secrets --from-env-file=/dev/stdin >/dev/null
  echo "bootstrap: codex-k8s-secrets generated and stored (not shown)" >&2
fi
{
  echo CODEXK8S_GITHUB_OAUTH_CLIENT_ID=$(quote "${CODEXK8S_GITHUB_OAUTH_CLIENT_ID:-}")
  echo CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET=$(quote "${CODEXK8S_GITHUB_OAUTH_CLIENT_SECRET:-}")
  echo CODEXK8S_OPENAI_API_KEY=$(quote "${CODEXK8S_OPENAI_API_KEY:-}")
  echo CODEXK8S_BOOTSTRAP_OWNER_EMAIL=$(quote "$CODEXK8S_BOOTSTRAP_OWNER_EMAIL")
} | kubectl -n "\$ns" create secret generic codex-k8s-operator-secrets --from-env-file=/dev/stdin --dry-run=client -o yaml | kubectl apply -f - >/dev/null
echo "bootstrap: codex-k8s-operator-secrets applied from the config (not shown)" >&2
# A private registry's pull credentials, for the platform's pods and (copied by the worker) each run's.
if [ -n $(quote "${CODEXK8S_REGISTRY_USERNAME:-}") ]; then
  auth="\$(printf '%s:%s' $(quote "${CODEXK8S_REGISTRY_USERNAME:-}") $(quote "${CODEXK8S_REGISTRY_PASSWORD:-}") | base64 -w0)"
  printf '{"auths":{"%s":{"auth":"%s"}}}' $(quote "${CODEXK8S_IMAGE_REGISTRY%%/*}") "\$auth" \
    | kubectl -n "\$ns" create secret generic codex-k8s-registry --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson=/dev/stdin --dry-run=client -o yaml \
    | kubectl apply -f - >/dev/null
  echo "bootstrap: codex-k8s-registry applied from the config (not shown)" >&2
fi
EOF
}

# The platform's non-secret settings from the config file as the ConfigMap codex-k8s-settings,
# which overrides deploy/base/config.yaml; applied every run, so a changed setting reaches the next rollout.
settings_names='CODEXK8S_LEARNING_MODE_DEFAULT CODEXK8S_SLOTS_PER_PROJECT CODEXK8S_RUN_DEADLINE CODEXK8S_RUN_NAMESPACE_TTL CODEXK8S_JWT_TTL
CODEXK8S_AGENT_IMAGE CODEXK8S_GITHUB_OAUTH_URL CODEXK8S_GITHUB_API_URL CODEXK8S_DATABASE_POOL_SIZE
CODEXK8S_DATABASE_CONNECT_TIMEOUT_MS CODEXK8S_SHUTDOWN_TIMEOUT CODEXK8S_READ_FALLBACK CODEXK8S_READ_WAIT_MS CODEXK8S_PROJECTION_BATCH_SIZE
CODEXK8S_WEBHOOK_RATE_LIMIT CODEXK8S_WEBHOOK_UNVERIFIED_RATE_LIMIT CODEXK8S_API_RATE_LIMIT CODEXK8S_LOGIN_RATE_LIMIT CODEXK8S_TRUSTED_PROXY_HOPS
CODEXK8S_SLOT_LEASE CODEXK8S_RUN_QUOTA_CPU CODEXK8S_RUN_QUOTA_MEMORY CODEXK8S_RUN_QUOTA_PODS CODEXK8S_RUN_EGRESS_PORTS CODEXK8S_LAUNCH_CONCURRENCY
CODEXK8S_LOG_LEVEL'
step_settings() {
  local name lines=""
  for name in $settings_names; do
    # An empty value is a setting too (CODEXK8S_LEARNING_MODE_DEFAULT="" means off); unset is not.
    if [ -n "${!name+set}" ]; then lines+="$name=${!name}"$'\n'; fi
  done
  on_target <<SCRIPT
set -euo pipefail
$(kube_env)
kubectl -n '$NAMESPACE' create configmap codex-k8s-settings --from-env-file=/dev/stdin --dry-run=client -o yaml <<'SETTINGS' | kubectl apply -f - >/dev/null
$lines
SETTINGS
SCRIPT
}

# The runners that deploy run in the cluster they deploy to, as the ServiceAccount codex-k8s-deployer
# (deploy/runner), bound to the staging namespace as its admin: an autoscaled runner scale set
# (actions-runner-controller), or one persistent long-polling runner (CODEXK8S_RUNNER_KIND). Both
# register with a PAT (runners made later need it again), which goes into a Secret from stdin.
step_runner() {
  if [ -z "${CODEXK8S_GITHUB_RUNNER_PAT:-}" ]; then
    echo "bootstrap: CODEXK8S_GITHUB_RUNNER_PAT is empty: no runner registered (set it and rerun)" >&2
    return 0
  fi
  copy_deploy
  on_target <<EOF
set -euo pipefail
$(kube_env)
kubectl apply -k '$deploy_dir/runner/base' >/dev/null
# An earlier version gave the deployer a ClusterRole; apply -k does not prune it.
kubectl delete clusterrolebinding,clusterrole codex-k8s-deployer --ignore-not-found >/dev/null
kubectl -n '$NAMESPACE' create rolebinding codex-k8s-deployer --clusterrole=admin --serviceaccount=codex-k8s-runners:codex-k8s-deployer --dry-run=client -o yaml \
  | kubectl apply -f - >/dev/null
changed="\$(printf 'github_token=%s\n' $(quote "$CODEXK8S_GITHUB_RUNNER_PAT") \
  | kubectl -n codex-k8s-runners create secret generic codex-k8s-runner-pat --from-env-file=/dev/stdin --dry-run=client -o yaml \
  | kubectl apply -f -)"
if [ '$runner_kind' = scale-set ]; then
  if ! command -v helm >/dev/null; then
    [ '$mode' = host ] || { echo "bootstrap: helm is not installed here (the runner scale set is a helm chart)" >&2; exit 1; }
    curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash
  fi
  helm upgrade --install arc --namespace arc-systems --create-namespace --version $ARC_VERSION \
    oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set-controller >/dev/null
  # ARC sends the labels to GitHub when it creates the scale set only: to change them, helm uninstall it first.
  helm upgrade --install '$runner_name' --namespace codex-k8s-runners --version $ARC_VERSION \
    -f '$deploy_dir/runner/scale-set.values.yaml' --set runnerScaleSetName='$runner_name' \
    --set githubConfigUrl='https://github.com/$CODEXK8S_GITHUB_REPOSITORY' --set-json 'scaleSetLabels=$CODEXK8S_RUNNER_LABELS' \
    oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set >/dev/null
else
  changed+="\$(kubectl -n codex-k8s-runners create configmap codex-k8s-runner --from-literal=RUNNER_URL='https://github.com/$CODEXK8S_GITHUB_REPOSITORY' \
    --from-literal=RUNNER_NAME='$runner_name' --from-literal=RUNNER_LABELS='$runner_labels' --dry-run=client -o yaml | kubectl apply -f -)"
  kubectl apply -k '$deploy_dir/runner/persistent' >/dev/null
  # A changed PAT, name or label list reaches the runner by a restart; an unchanged one leaves a
  # running deploy alone.
  case "\$changed" in
    *configured*) kubectl -n codex-k8s-runners rollout restart deployment/codex-k8s-runner >/dev/null ;;
  esac
fi
EOF
}

# As a cluster admin: the overlay's cluster-wide objects (which the deploy runner may not change)
# always, and the whole overlay when CODEXK8S_IMAGE_TAG names images already pushed.
step_deploy() {
  if [ -z "$CODEXK8S_STAGING_DOMAIN" ]; then
    echo "bootstrap: CODEXK8S_STAGING_DOMAIN is empty: nothing deployed (the Ingress and its certificate need the domain; set it and rerun)" >&2
    return 0
  fi
  local scope=all
  if [ -z "$CODEXK8S_IMAGE_TAG" ]; then
    scope=cluster
    echo "bootstrap: CODEXK8S_IMAGE_TAG is empty: only the cluster-wide objects now; the workflow Deploy $environment builds or takes the images and deploys the rest" >&2
  fi
  copy_deploy
  on_target <<EOF
set -euo pipefail
$(kube_env)
CODEXK8S_APPLY_SCOPE=$scope CODEXK8S_IMAGE_REGISTRY='$CODEXK8S_IMAGE_REGISTRY' CODEXK8S_PUBLIC_HOST='$CODEXK8S_STAGING_DOMAIN' CODEXK8S_ACME_EMAIL=$(quote "$CODEXK8S_ACME_EMAIL") \
  '$deploy_dir/apply.sh' '$environment' '$CODEXK8S_IMAGE_TAG'
EOF
}

step_print_github() {
  local domain="${CODEXK8S_STAGING_DOMAIN:-<your domain>}" labels_variable=CODEXK8S_RUNNER_LABELS
  if [ "$environment" = production ]; then labels_variable=CODEXK8S_PRODUCTION_RUNNER_LABELS; fi
  cat <<EOF
Configure GitHub for $CODEXK8S_GITHUB_REPOSITORY ($environment):
  Webhook (Settings → Webhooks → Add): https://$domain/api/v1/webhooks/github, content type application/json,
    events: Issues, Pull requests. Its secret is in the cluster; read it on the target with:
    kubectl -n $NAMESPACE get secret codex-k8s-secrets -o jsonpath='{.data.CODEXK8S_GITHUB_WEBHOOK_SECRET}' | base64 -d
  OAuth app callback URL: https://$domain/api/v1/auth/github/callback
  Repository variables (Settings → Secrets and variables → Actions → Variables):
    $labels_variable = $CODEXK8S_RUNNER_LABELS   (the Deploy $environment workflow's runs-on)
    CODEXK8S_IMAGE_REGISTRY = $CODEXK8S_IMAGE_REGISTRY   (where the staging workflow pushes the images)
  Repository secrets CODEXK8S_REGISTRY_USERNAME and CODEXK8S_REGISTRY_PASSWORD, only for a registry other than ghcr.io
    (there the workflow pushes with its own GITHUB_TOKEN)
  Environments: staging, and production with required reviewers (the approval gate); in $environment, the variables
    CODEXK8S_PUBLIC_HOST = $domain and CODEXK8S_ACME_EMAIL
EOF
  if [[ "$CODEXK8S_IMAGE_REGISTRY" == ghcr.io/* && -z "${CODEXK8S_REGISTRY_USERNAME:-}" ]]; then
    cat <<EOF
  The images on ghcr.io are private until you make them public (the package's settings); until then the cluster
    cannot pull them: set CODEXK8S_REGISTRY_USERNAME and CODEXK8S_REGISTRY_PASSWORD (a token with read:packages) and rerun.
EOF
  fi
}

if [ "$dry_run" = 1 ]; then
  echo "The plan ($mode mode, $environment; --dry-run: nothing is connected to or changed):"
fi
if [ "$mode" = host ]; then
  step check_host "check that $CODEXK8S_STAGING_DOMAIN resolves to $CODEXK8S_STAGING_HOST and the host runs Ubuntu 24.04 (over SSH as root)"
  step operator_user "create $CODEXK8S_OPERATOR_USER (sudo) with the key in $CODEXK8S_OPERATOR_PUBLIC_KEY_FILE; SSH keys only, no root password login"
  step firewall "ufw: deny inbound but 22, 80 and 443 (and k3s's pod and service networks)"
  step k3s "install k3s (local-path storage, Traefik ingress) unless present"
else
  step check_cluster "check that the cluster in $CODEXK8S_KUBECONFIG answers (no host is touched)"
fi
step cert_manager "install cert-manager $CERT_MANAGER_VERSION (TLS certificates by HTTP-01)"
step secrets "generate the internal secrets once and store them as Secrets in $NAMESPACE (never printed)"
step settings "store the platform's settings from the config file as the ConfigMap codex-k8s-settings"
step runner "run the deploy runner for $CODEXK8S_GITHUB_REPOSITORY in the cluster ($([ "$runner_kind" = scale-set ] && echo 'an autoscaled runner scale set' || echo 'one persistent runner'), labels $CODEXK8S_RUNNER_LABELS), deploying as codex-k8s-deployer, admin of $NAMESPACE only"
if [ -z "$CODEXK8S_STAGING_DOMAIN" ]; then
  step deploy "deploy nothing (no domain: the Ingress and its certificate need one)"
elif [ -n "$CODEXK8S_IMAGE_TAG" ]; then
  step deploy "deploy the $environment overlay with the images $CODEXK8S_IMAGE_REGISTRY/codex-k8s{,-agent}:$CODEXK8S_IMAGE_TAG: migrations, then the platform"
else
  step deploy "apply the $environment overlay's cluster-wide objects only (CODEXK8S_IMAGE_TAG is empty): the workflow Deploy $environment deploys the rest"
fi
step print_github "print what to configure on GitHub (webhook, OAuth callback, runner labels, environments)"
