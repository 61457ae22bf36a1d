#!/usr/bin/env bash
# THE test command of modelops-bundle:  bash scripts/test.sh [PYTEST ARGS...]
#
# Installs everything the test suite needs, then runs lint, format check, type check and the tests.
# Works on a fresh Debian 12 machine with Python >= 3.10, git and npm (as root it also installs the
# system packages); on a machine where everything is installed it only checks and takes seconds.
#
#   1. system packages: docker-registry (CNCF distribution), apache2-utils (htpasswd), skopeo
#   2. Azurite (Azure Blob emulator) from npm into .services/node
#   3. the virtualenv .venv with `pip install -e '.[test]'` (redone only when pyproject.toml changes)
#   4. ruff check, ruff format --check, mypy, pytest "$@"
#
# Environment: PYTHON (interpreter for a new .venv, default python3), MOPS_TEST_REINSTALL=1 (force step 3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
NODE_PREFIX="$ROOT/.services/node"
AZURITE_BIN="$NODE_PREFIX/node_modules/.bin/azurite-blob"
STAMP="$VENV/.modelops-bundle-test-deps"
PYTHON="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# ------------------------------------------------------------------------------------------ system
step "system packages (docker-registry, apache2-utils, skopeo)"
apt_packages=()
if [ ! -x /usr/bin/docker-registry ] && ! have docker-registry; then apt_packages+=(docker-registry); fi
if ! have htpasswd; then apt_packages+=(apache2-utils); fi
if ! have skopeo; then apt_packages+=(skopeo); fi
if ! have npm && [ ! -x "$AZURITE_BIN" ]; then apt_packages+=(npm); fi
if [ ! -x "$VENV/bin/python" ] && have "$PYTHON" && ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
    apt_packages+=(python3-venv) # Debian's python3 needs it for `python3 -m venv`
fi

# The Debian docker-registry package starts a registry on 0.0.0.0:5000 when it can. The tests start
# their own registries on 127.0.0.1; make sure the package's service is neither running nor enabled.
stop_packaged_registry() {
    if have systemctl && [ -d /run/systemd/system ]; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    elif have update-rc.d && [ -e /etc/init.d/docker-registry ]; then
        update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
    local pid pids arg
    local -a args
    if have pgrep; then
        pids="$(pgrep -f docker-registry || true)"
    else # minimal images have no procps: read /proc directly
        pids="$(grep -l docker-registry /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true)"
    fi
    for pid in $pids; do
        # Only the packaged service: the program itself is docker-registry and its config is the
        # package's /etc/docker/registry/config.yml (the tests' registries use their own configs).
        args=()
        mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || continue
        if [ "${#args[@]}" -eq 0 ] || [ "${args[0]##*/}" != docker-registry ]; then continue; fi
        for arg in "${args[@]:1}"; do
            if [ "$arg" = /etc/docker/registry/config.yml ]; then
                note "stopping the packaged docker-registry service (pid $pid)"
                kill "$pid" 2>/dev/null || true
                break
            fi
        done
    done
}

if [ "${#apt_packages[@]}" -eq 0 ]; then
    note "already installed"
elif is_root && have apt-get; then
    note "installing: ${apt_packages[*]}"
    # Keep maintainer scripts from starting services while installing (standard Debian mechanism).
    created_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT # also if we are interrupted
    fi
    install_rc=0
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" \
                </dev/null
    } || install_rc=$?
    if [ -n "$created_policy" ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    [ "$install_rc" -eq 0 ] || die "apt-get install ${apt_packages[*]} failed (exit $install_rc)"
    stop_packaged_registry
else
    note "WARNING: missing ${apt_packages[*]} and not root (or no apt-get); install them with:"
    note "  sudo apt-get install --no-install-recommends ${apt_packages[*]}"
    note "tests that need them will fail with a message naming the binary"
fi

# -------------------------------------------------------------------------------------------- node
step "Azurite (npm) in .services/node"
if [ -x "$AZURITE_BIN" ]; then
    note "already installed"
elif have npm; then
    mkdir -p "$NODE_PREFIX"
    npm install --prefix "$NODE_PREFIX" azurite@3 --no-audit --no-fund --loglevel=error </dev/null
    [ -x "$AZURITE_BIN" ] || die "npm installed azurite but $AZURITE_BIN is missing"
else
    die "npm is not installed: install Node.js and npm (Debian: apt-get install npm), then re-run"
fi

# ---------------------------------------------------------------------------------------- python
step "virtualenv .venv with modelops-bundle[test]"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    note "the existing .venv is broken (its interpreter does not run): recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    have "$PYTHON" || die "$PYTHON not found (set PYTHON=/path/to/python3.10+)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$PYTHON is Python $("$PYTHON" -c 'import sys; print(*sys.version_info[:2], sep=".")'); 3.10+ needed"
    note "creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip </dev/null
fi
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have_stamp" ] && [ -z "${MOPS_TEST_REINSTALL:-}" ] &&
    "$VENV/bin/python" -c 'import modelops_bundle, pytest, ruff, mypy' >/dev/null 2>&1; then
    note "up to date ($("$VENV/bin/python" --version 2>&1))"
else
    note "pip install -e '.[test]'"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]' </dev/null
    printf '%s\n' "$want" >"$STAMP"
fi

export PATH="$VENV/bin:$NODE_PREFIX/node_modules/.bin:$PATH"
export MOPS_AZURITE_BIN="$AZURITE_BIN"
export VIRTUAL_ENV="$VENV"

# ---------------------------------------------------------------------------------------- checks
lint_paths=()
for folder in src tests bench; do
    if [ -d "$folder" ]; then lint_paths+=("$folder"); fi
done

failed=()
check() {
    local name="$1"
    shift
    step "$name: $*"
    if "$@"; then
        return 0
    else
        failed+=("$name (exit $?)")
    fi
}

check lint ruff check "${lint_paths[@]}"
check format ruff format --check "${lint_paths[@]}"
check types mypy src
check tests pytest "$@"

step "summary"
if [ "${#failed[@]}" -gt 0 ]; then
    printf '    FAILED: %s\n' "${failed[@]}"
    exit 1
fi
note "all checks passed"
