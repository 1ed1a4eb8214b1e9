#!/usr/bin/env bash
# Idempotent set-up shared by demo.sh and test.sh: a Python 3.11 virtualenv in .venv with the pinned
# dependencies (pyproject.toml's runtime set and `dev` group, exact versions from constraints.txt) and this project
# installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat constraints.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "installing pinned dependencies (first run: a few minutes)"
  # pip 25.1 is the first to install PEP 735 dependency groups (--group)
  .venv/bin/python -m pip install -q --upgrade 'pip>=25.1'
  # torch and torchvision first, exactly pinned: an unpinned torch would pull another multi-GB build
  .venv/bin/python -m pip install -q -c constraints.txt torch torchvision
  .venv/bin/python -m pip install -q -c constraints.txt -e . --group dev
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The inference engine the demo and the tests serve models with (`transformers serve`, in its own environment;
# stamped, a no-op once built): see README "Serving models for evaluation"
PYTHON=$PY scripts/setup_engines.sh
