#!/usr/bin/env bash
# Deploy BMS.
#   deploy/deploy.sh compose <env>                  Docker Compose on this host (docker/.env holds the settings)
#   deploy/deploy.sh kubernetes <dev|production>    kustomize overlay deploy/k8s/overlays/<env> to the current context
# Options (environment):
#   IMAGE_TAG=<tag>   deploy this image tag (default: the overlay's tag; compose builds bms:local)
#   IMAGE_REPO=<repo> image repository (default ghcr.io/bms/bms)
#   DRY_RUN=1         print the commands instead of running them
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE_REPO="${IMAGE_REPO:-ghcr.io/bms/bms}"
IMAGE_TAG="${IMAGE_TAG:-}"
DRY_RUN="${DRY_RUN:-0}"

usage() {
  echo "usage: $0 compose|kubernetes <env>   (kubernetes env: dev|production)" >&2
  exit 2
}

run() {
  if [ "$DRY_RUN" = "1" ]; then
    echo "+ $*"
  else
    "$@"
  fi
}

need() {
  if [ "$DRY_RUN" != "1" ] && ! command -v "$1" >/dev/null 2>&1; then
    echo "error: $1 is not installed" >&2
    exit 1
  fi
}

deploy_compose() {
  local env="$1"
  local compose_file="$ROOT/docker/docker-compose.yml"
  local env_file="$ROOT/docker/.env"
  need docker
  if [ ! -f "$env_file" ]; then
    echo "error: $env_file is missing: cp docker/.env.example docker/.env and fill the secrets" >&2
    exit 1
  fi
  export BMS_ENVIRONMENT="$env"
  if [ -n "$IMAGE_TAG" ]; then
    export BMS_IMAGE="$IMAGE_REPO:$IMAGE_TAG"
    run docker compose -f "$compose_file" --env-file "$env_file" pull web ws worker beat migrate
    run docker compose -f "$compose_file" --env-file "$env_file" up -d --no-build --wait
  else
    run docker compose -f "$compose_file" --env-file "$env_file" up -d --build --wait
  fi
  run docker compose -f "$compose_file" --env-file "$env_file" ps
}

deploy_kubernetes() {
  local env="$1"
  local overlay="$ROOT/deploy/k8s/overlays/$env"
  local ns
  case "$env" in
    dev) ns=bms-dev ;;
    production) ns=bms ;;
    *) usage ;;
  esac
  need kubectl
  [ -d "$overlay" ] || { echo "error: no overlay $overlay" >&2; exit 1; }

  run kubectl apply -f "$overlay/namespace.yaml"
  if [ "$DRY_RUN" != "1" ] && ! kubectl -n "$ns" get secret bms-secrets >/dev/null 2>&1; then
    echo "error: secret bms-secrets missing in namespace $ns (template: deploy/k8s/base/secrets.example.yaml)" >&2
    exit 1
  fi
  # Jobs are immutable: the migration job is replaced on every deploy, then awaited before the rollout.
  run kubectl -n "$ns" delete job migrate --ignore-not-found
  if [ -n "$IMAGE_TAG" ]; then
    if [ "$DRY_RUN" = "1" ]; then
      echo "+ kubectl kustomize $overlay | (image -> $IMAGE_REPO:$IMAGE_TAG) | kubectl apply -f -"
    else
      kubectl kustomize "$overlay" \
        | sed -E "s#image: (\"?)${IMAGE_REPO}:[^\" ]+#image: \\1${IMAGE_REPO}:${IMAGE_TAG}#" \
        | kubectl apply -f -
    fi
  else
    run kubectl apply -k "$overlay"
  fi
  run kubectl -n "$ns" wait --for=condition=complete job/migrate --timeout=600s
  for deployment in web ws worker beat; do
    run kubectl -n "$ns" rollout status "deployment/$deployment" --timeout=600s
  done
  run kubectl -n "$ns" get pods,services,ingress
}

[ $# -eq 2 ] || usage
case "$1" in
  compose) deploy_compose "$2" ;;
  kubernetes) deploy_kubernetes "$2" ;;
  *) usage ;;
esac
