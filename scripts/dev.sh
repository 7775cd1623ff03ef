#!/usr/bin/env bash
# Set up this machine (idempotent), then run one task:
#   demo    start the local platform + a worker, then release v1.2.3 as a canary and follow it
#   test    run the test suite
#   up      start the local platform + a worker (Temporal UI on http://localhost:8233) + the dashboard (:8400)
#   down    stop everything the platform started
#   install only install
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:-demo}"
shift || true

APT_PACKAGES=(haproxy prometheus prometheus-alertmanager docker-registry redis-server skopeo postgresql-15 chromium)

install() {
  local missing=()
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
  command -v initdb >/dev/null || [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v chromium >/dev/null || missing+=(chromium)   # the dashboard's browser test
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  fi
  command -v terraform >/dev/null || { echo "terraform is not on PATH (it ships with these machines)"; exit 1; }
  # Debian may start its own copies on their default ports; ours run on their own ports.
  for svc in haproxy prometheus prometheus-alertmanager docker-registry redis-server postgresql; do
    systemctl stop "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  done
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
  fi
  local stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    echo "== installing Python packages"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
  fi
  # Terraform warns on every command when TF_CLI_CONFIG_FILE points nowhere.
  if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
    export TF_CLI_CONFIG_FILE=/dev/null
  fi
}

platform_up() {
  .venv/bin/python -m infrastructure.local up --temporal-port 7233 --temporal-ui-port 8233 \
    --worker-cmd ".venv/bin/python worker.py" --dashboard-cmd ".venv/bin/python starters/dashboard.py" "$@"
}

install
case "$task" in
  install) ;;
  up) platform_up "$@" ;;
  down) .venv/bin/python -m infrastructure.local down "$@" ;;
  demo)
    platform_up
    echo "== releasing v1.2.3 as a canary; watch it at http://localhost:8400 (or Temporal's UI, :8233)"
    exec .venv/bin/python starters/deploy.py v1.2.3 canary --wait "$@"
    ;;
  test)
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy                # [tool.mypy] in pyproject.toml: 0 errors is the contract
    .venv/bin/lint-imports        # the import layers of docs/architecture.md ([tool.importlinter])
    if [ -x .venv/bin/actionlint ]; then
      .venv/bin/actionlint        # .github/workflows (.github/actionlint.yaml); shellcheck on run: if installed
    else
      echo "== actionlint skipped: not installed (pip install -e '.[actionlint]' downloads its binary from GitHub)"
    fi
    # Medium+ severity. pip-audit runs in .github/workflows (it needs PyPI's vulnerability
    # data, which the package mirror of these machines does not serve).
    .venv/bin/bandit -q -r engine clients workflows activities starters infrastructure worker.py -ll
    exec .venv/bin/python -m pytest -n 2 --durations=30 "$@"
    ;;
  *) echo "unknown task: $task (demo | test | up | down | install)"; exit 2 ;;
esac
