#!/usr/bin/env bash
# The seed's smoke tests: a thin wrapper over smoke_tests.py, which runs the engine's own
# post-deployment checks (its smoke provider on every instance that takes traffic) against the
# version an environment serves now, and changes nothing.
#
#   ./scripts/smoke-tests.sh                          # production
#   DEPLOY_ENVIRONMENT=staging ./scripts/smoke-tests.sh
#
# Environment variables: DEPLOY_ENVIRONMENT (default: production), DEPLOY_CONFIG (default:
# deploy-code.yaml), PYTHON (default: .venv/bin/python, else python3).
# Exit codes: 0 passed, 1 a check failed, 2 refused input.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

args=(--env "${DEPLOY_ENVIRONMENT:-production}")
if [ -n "${DEPLOY_CONFIG:-}" ]; then
  args+=(--config "$DEPLOY_CONFIG")
fi
exec "$python" smoke_tests.py "${args[@]}" "$@"
