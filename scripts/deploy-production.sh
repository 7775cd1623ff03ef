#!/usr/bin/env bash
# The seed's deployment script: a thin wrapper over starters/deploy.py (the engine does the work:
# pre-deployment checks, health monitoring, automatic rollback, traffic management, report).
#
#   ./scripts/deploy-production.sh blue-green v1.2.3
#   CANARY_WEIGHT=25 ./scripts/deploy-production.sh canary latest   # first canary weight 25 %
#   DRY_RUN=true ./scripts/deploy-production.sh rolling v1.2.3      # print the plan, start nothing
#
# STRATEGY is canary, blue-green or rolling; VERSION a semantic version or `latest` (the newest
# version tag of the CI image repository; the release promotes and records its digest).
# Environment variables:
#   DEPLOY_ENVIRONMENT  the environment of deploy-code.yaml (default: production)
#   DEPLOY_CONFIG       the configuration file (default: deploy-code.yaml)
#   CANARY_WEIGHT       canary only: the traffic share of its first step, in percent
#   DRY_RUN=true        print the plan (stages, Terraform plan, image digest, steps); change nothing
#   DEPLOY_WAIT=false   start the release and return instead of following it to its end
#   PYTHON              the interpreter (default: .venv/bin/python, else python3)
# Exit codes are the starter's: 0 released, 1 rolled back or failed, 2 refused input (nothing
# changed), 3 another release holds the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 2 ]; then
  echo "usage: $0 STRATEGY VERSION   (STRATEGY: canary | blue-green | rolling; VERSION: v1.2.3 or latest)" >&2
  exit 2
fi
strategy=$1
version=$2

python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

args=("$version" "$strategy" --env "${DEPLOY_ENVIRONMENT:-production}")
if [ -n "${DEPLOY_CONFIG:-}" ]; then
  args+=(--config "$DEPLOY_CONFIG")
fi
if [ -n "${CANARY_WEIGHT:-}" ]; then
  if [ "$strategy" = canary ]; then
    args+=(--first-weight "$CANARY_WEIGHT")
  else
    echo "note: CANARY_WEIGHT=$CANARY_WEIGHT ignored: $strategy has no canary weight" >&2
  fi
fi
case "${DRY_RUN:-}" in
  1 | true | TRUE | True | yes) args+=(--dry-run) ;;
esac
if [ "${DEPLOY_WAIT:-true}" != false ]; then
  args+=(--wait)
fi
exec "$python" starters/deploy.py "${args[@]}"
