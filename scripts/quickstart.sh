#!/usr/bin/env bash
# The main job of modelops-bundle, end to end, on the embedded default environment (no server):
#
#   bash scripts/quickstart.sh                  # QUICKSTART_KEEP=1 keeps the folder to carry on in
#
# Creates (or reuses) .venv with the package installed, then works in a fresh temporary folder with its
# own MODELOPS_HOME, so nothing of yours is touched, printing each command before it runs:
#
#   1. scaffolds the example SEIR project, tracks it, registers its model and calibration target and
#      shows their status;
#   2. pushes a version to the embedded registry, and again to show that unchanged content keeps its
#      digest and uploads nothing;
#   3. gets that version back by (short) digest into a fresh folder and checks every byte, runs the model
#      from the copy, and once more through the Python API as a worker would (shared verified cache);
#   4. edits a file the model depends on: the model goes stale;
#   5. the git-like loop with a colleague: a second clone that pulls; their change and yours to different
#      files meet through pull and push; then both change the same file, and pull and push refuse
#      rather than lose either (exit 1, nothing written) until one side is chosen;
#   6. ends with the next steps: where the user guide continues.
#
# Environment: PYTHON (interpreter for a new .venv, default python3); QUICKSTART_VENV (a virtualenv
# that already has modelops-bundle, used instead of .venv); QUICKSTART_KEEP=1 keeps the temporary folder
# for you to explore (it is deleted otherwise). Exits non-zero if any step does not do what it shows.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QUICKSTART_VENV:-$ROOT/.venv}"
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

# The same, for a command that must refuse (a conflict): shows its exit code, fails the script otherwise.
refused() {
    local code=0
    run "$@" || code=$?
    if [ "$code" -eq 0 ]; then
        echo "error: expected '$*' to refuse" >&2
        exit 1
    fi
    echo "(refused with exit code $code: nothing was changed)"
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

SHORT="${DIGEST:0:19}" # sha256: and 12 hex digits, as tags and status print it: any unique prefix works
say "Get exactly that version back, by its short digest, into a fresh folder (every file verified)"
run mops bundle ensure --dest "$WORK/seir-copy" "$SHORT"
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

# ------------------------------------------------------------------------------- the git-like loop
say "A colleague clones the bundle: a project of the same name, brought up to date by pull"
run mkdir -p "$WORK/colleague/seir-demo"
run cd "$WORK/colleague/seir-demo"
run mops bundle init -q .
echo "# (init scaffolded a pyproject.toml of its own; the pushed one replaces it: --overwrite)"
run mops bundle pull --overwrite
run mops bundle status --offline

say "They change another file and push; you pull their change in (yours is kept) and push both"
run sed -i 's/^0-4,5800/0-4,5900/' data/demographics.csv
run mops bundle push
run cd "$WORK/seir-demo"
run mops bundle status
run mops bundle pull
run mops bundle push

say "Both change the same file: pull and push refuse rather than lose either change"
run cd "$WORK/colleague/seir-demo"
run mops bundle pull
run sed -i 's/^0-4,5900/0-4,6200/' data/demographics.csv
run mops bundle push -q
run cd "$WORK/seir-demo"
run sed -i 's/^0-4,5900/0-4,6100/' data/demographics.csv
run mops bundle status
refused mops bundle pull
refused mops bundle push
echo "# Choose: keep yours (move it aside, pull, re-apply), or take theirs:"
run mops bundle pull --overwrite
run mops bundle status --offline

say "Done"
echo
echo "Next steps"
echo "  * README.md's user guide continues with this same example from \"3. Register models and calibration"
echo "    targets\": status and diff in detail, tags, provenance, verify, the cache, blob storage."
if [ -n "${QUICKSTART_KEEP:-}" ]; then
    echo "  * Carry on where this left off:"
    echo "        export MODELOPS_HOME=$MODELOPS_HOME && cd $WORK/seir-demo"
else
    echo "  * Run this again with QUICKSTART_KEEP=1 to keep its folder and carry on there."
fi
echo "  * Every command: mops bundle --help and docs/cli.md; the Python API: docs/python-api.md."
