#!/usr/bin/env bash
# GPU check of clothparse: bash bench/gpu_check.sh OUTDIR [--checkpoint CKPT] [--dry-run]
# Bounded by its budgets (90 s install, sections 430 s, hard stop 480 s; never yet run on a GPU);
# writes OUTDIR/gpu_check.json and gpu_check.md
# (and OUTDIR/suite/bench.{json,md,png}). Every section has its own time budget.
#
# On a machine with no package index (the lent GPU machines), Python packages it lacks travel
# as wheels in .whl/ at the repository root: `make gpu-wheels` fetches them here (pycocotools
# and lmdb for CPython 3.12), and this script installs them into a scratch folder first.
set -u -o pipefail

if [ $# -lt 1 ]; then
    echo "usage: bash bench/gpu_check.sh OUTDIR [--checkpoint CKPT] [--dry-run]" >&2
    exit 2
fi
OUTDIR=$1
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUTDIR"

# Build what can be built (the native SLIC comes with an editable install); a failure is
# not fatal: the package is then imported from the checkout through PYTHONPATH, and
# gpu_check.py registers clothparse.bench / clothparse.export itself.
if ! "$PY" -c "import clothparse.bench, clothparse.export" >/dev/null 2>&1; then
    (cd "$ROOT" && timeout 90 "$PY" -m pip install -e . --no-deps --no-build-isolation -q) \
        >"$OUTDIR/install.log" 2>&1 || echo "[gpu_check] pip install -e . failed or timed out (see install.log); using PYTHONPATH" >&2
fi
if ! "$PY" -c "import pycocotools, lmdb" >/dev/null 2>&1 && compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
    SITE=${TMPDIR:-/tmp}/clothparse_site
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$ROOT"/.whl/*.whl >"$OUTDIR/wheels.log" 2>&1; then
        export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "[gpu_check] installing .whl/ failed (see wheels.log)" >&2
    fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi >"$OUTDIR/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" >"$OUTDIR/nvidia-smi.txt"

cd "$ROOT"
timeout 480 "$PY" bench/gpu_check.py "$OUTDIR" --budget 430 "$@"
rc=$?
if [ $rc -ne 0 ]; then
    echo "[gpu_check] gpu_check.py exited with $rc; the report in $OUTDIR holds the sections that finished" >&2
fi
exit $rc
