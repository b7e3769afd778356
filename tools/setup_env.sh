#!/usr/bin/env bash
# Create or refresh the project-local virtual environment used by `make`.
#
# Idempotent: when the requirement files are unchanged since the last
# successful run and the environment imports, it returns in a few seconds.
#
# Environment variables:
#   PYTHON            interpreter that creates the venv (default: python3)
#   CPS4_VENV         venv folder (default: <repo>/.venv)
#   CPS4_WHEEL_DIR    folder holding a prebuilt mmcv 2.1.0 wheel (optional)
#   CPS4_WHEEL_CACHE  where a source-built mmcv wheel is kept for next time
#                     (default: ${XDG_CACHE_HOME:-~/.cache}/cps4/wheels)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CPS4_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
CACHE=${CPS4_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cps4/wheels}
MMCV_VERSION=2.1.0
STAMP=$VENV/.cps4-env-stamp

log() { echo "[setup_env] $*" >&2; }

fingerprint() {
  # Requirements, packaging and the C++/CUDA sources of cps4._C.
  { cat "$ROOT"/requirements.txt "$ROOT"/requirements/*.txt "$ROOT"/setup.py \
      "${BASH_SOURCE[0]}"
    find "$ROOT/csrc" -type f -print0 | sort -z | xargs -0 cat; } |
    sha256sum | cut -d' ' -f1
}

env_ok() {
  "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import mmcv, mmcv.ops, mmseg, cps4  # noqa: F401
from cps4.ops import HAS_EXTENSION
assert mmcv.__version__ == '2.1.0' and HAS_EXTENSION
PY
}

want=$(fingerprint)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && env_ok; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip

log "installing torch (pinned) and build tools"
"${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"

mmcv_ok() {
  "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1
}

if ! mmcv_ok; then
  links=()
  [ -n "${CPS4_WHEEL_DIR:-}" ] && [ -d "$CPS4_WHEEL_DIR" ] && links+=(--find-links "$CPS4_WHEEL_DIR")
  [ -d "$CACHE" ] && links+=(--find-links "$CACHE")
  if [ ${#links[@]} -gt 0 ] && "${PIP[@]}" install -q --no-index --no-deps "${links[@]}" "mmcv==$MMCV_VERSION" 2>/dev/null; then
    log "mmcv $MMCV_VERSION installed from a prebuilt wheel"
  else
    log "no usable mmcv $MMCV_VERSION wheel: building it from source with ops (about 16 min on 2 cores, once)"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d)
    # mmcv 2.1.0's setup.py needs pkg_resources, removed from setuptools 70.
    "${PIP[@]}" install -q "setuptools<70"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$tmp" "mmcv==$MMCV_VERSION"
    mv "$tmp"/mmcv-*.whl "$CACHE"/
    rmdir "$tmp"
    # Put back the setuptools that torch asks for.
    "${PIP[@]}" install -q -r "$ROOT/requirements/build.txt" "setuptools>=77"
    "${PIP[@]}" install -q --no-index --no-deps --find-links "$CACHE" "mmcv==$MMCV_VERSION"
    log "mmcv wheel cached in $CACHE"
  fi
fi

log "installing requirements"
"${PIP[@]}" install -q -r "$ROOT/requirements.txt"
log "installing cps4 (editable) and building its C++ extension cps4._C"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

if ! env_ok; then
  log "the environment in $VENV does not import mmcv.ops/mmseg/cps4 or cps4._C is missing; run '$VENV/bin/python -c \"from cps4 import _C\"' to see why"
  exit 1
fi
echo "$want" > "$STAMP"
log "environment ready: $VENV"
