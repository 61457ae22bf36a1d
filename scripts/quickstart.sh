#!/usr/bin/env bash
# The main job of modelops-bundle, end to end, on the embedded default environment (no server):
#
#   bash scripts/quickstart.sh
#
# Creates (or reuses) .venv with the package installed, then works in a fresh temporary folder with its
# own MODELOPS_HOME, so nothing of yours is touched: scaffolds the SEIR example project, tracks it and
# shows its status. Each command is printed before it runs.
#
# Environment: PYTHON (interpreter for a new .venv, default python3); QUICKSTART_KEEP=1 keeps the
# temporary folder for you to explore (it is deleted otherwise).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
else
    say() { printf '\n# %s\n' "$*"; }
fi

# Print a command the way you would type it, then run it in this shell (so `run cd DIR` works).
run() {
    local shown="" arg
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then shown+=" $arg"; else shown+=" $(printf '%q' "$arg")"; fi
    done
    printf '\n$%s\n' "$shown"
    "$@"
}

# ----------------------------------------------------------------------------- install (quietly)
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$VENV" # broken virtualenv (its interpreter is gone)
fi
if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || {
        echo "error: $PYTHON not found (set PYTHON=/path/to/python3.10+)" >&2
        exit 1
    }
    echo "Creating .venv and installing modelops-bundle (once) ..."
    if ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        # Debian's system python3 needs python3-venv for `python3 -m venv`
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-venv </dev/null >/dev/null
    fi
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import modelops_bundle' >/dev/null 2>&1 || [ ! -x "$VENV/bin/mops" ]; then
    echo "Installing modelops-bundle into .venv ..."
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT" </dev/null
fi
export PATH="$VENV/bin:$PATH"

# ----------------------------------------------------------------------- an isolated playground
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mops-quickstart.XXXXXX")"
cleanup() {
    if [ -n "${QUICKSTART_KEEP:-}" ]; then
        printf '\nKept %s (MODELOPS_HOME=%s)\n' "$WORK" "$MODELOPS_HOME"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
export MODELOPS_HOME="$WORK/modelops-home" # environments, the embedded registry and blob folder
unset MOPS_ENV                              # use the embedded `local` environment
cd "$WORK"

# --------------------------------------------------------------------------------------- steps
# Append later steps (register-model, push, pull, run) below, each as `say ...` plus `run ...`.

say "Create the example SEIR project on the embedded 'local' environment (no server needed)"
run mops --version
run mops bundle init seir-demo --template seir
run cd seir-demo

say "Track every file that .modelopsignore does not exclude"
run mops bundle add .

say "Register the SEIR model (found by reading the source) with its data, and the calibration target"
run mops bundle register-model models/seir.py --data data/demographics.csv --data data/contact_patterns.csv
run mops bundle register-target targets/incidence.py

say "What the bundle holds, which models are ready, and what a push would do"
run mops bundle status
run mops bundle status --files

say "Push a version to the embedded registry (an OCI image layout under \$MODELOPS_HOME/registry)"
run mops bundle push
say "Pushing unchanged content again uploads nothing and keeps the digest"
run mops bundle push
DIGEST="$(mops bundle manifest --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])')"
run mops bundle tags

say "Get exactly that version back, by digest, into a fresh folder (every file verified on the way)"
run mops bundle ensure --dest "$WORK/seir-copy" --ref "$DIGEST"
run diff -r --exclude=.modelops-bundle "$WORK/seir-demo" "$WORK/seir-copy"
echo "every byte matches"

say "Run the model from the pulled copy"
run cd "$WORK/seir-copy"
run python run.py

say "Or, as a ModelOps worker does: by digest, through the shared verified cache, only what the model needs"
WORKER_CODE="from modelops_bundle import api
result = api.run_model('seir-demo@$DIGEST', 'seir_seirmodel', {'R0': 2.2}, seed=1)
print('peak reported cases:', round(max(result.outputs['incidence']['reported'])))
print('provenance tags:', {k: v for k, v in result.tags.items() if k in ('bundle.digest', 'model.id')})"
printf '\n$ python\n>>> %s\n' "${WORKER_CODE//$'\n'/$'\n'>>> }"
python -c "$WORKER_CODE"

say "A change to a file the model depends on makes it stale"
run cd "$WORK/seir-demo"
echo "age_group,share,population" >>data/contact_patterns.csv
run mops bundle status
run mops bundle diff

say "Done"
