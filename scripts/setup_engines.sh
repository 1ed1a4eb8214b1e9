#!/usr/bin/env bash
# Idempotent set-up of the inference engines' own virtualenvs (.venv-engines/<engine>): each engine pins its own
# torch/transformers, so it never shares the service's .venv (transformers 4.57.6 there answers `transformers serve`
# requests only as a stream, which VLMEvalKit's client cannot read). Builds the engine the demo and the tests need,
# `transformers` (CPU); vLLM, SGLang and LMDeploy need a GPU box: install them the same way there, then point
# EVALS_ENGINE_PYTHON_<ENGINE> at the interpreter.
#   scripts/setup_engines.sh              # .venv-engines/transformers
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

TORCH=(torch==2.14.1 torchvision==0.29.1)
TRANSFORMERS="transformers[serving]==5.23.0"
venv=.venv-engines/transformers
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $PY"
  "$PY" -m venv "$venv"
fi
stamp=$venv/.installed-$(printf '%s\n' "${TORCH[@]}" "$TRANSFORMERS" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "installing ${TORCH[*]} and $TRANSFORMERS into $venv (first run: a few minutes)"
  # torch and torchvision first, exactly pinned (they come from this machine's disk): a bare torch pulled in by
  # transformers would fetch another multi-GB (CUDA) build
  "$venv/bin/python" -m pip install -q "${TORCH[@]}"
  "$venv/bin/python" -m pip install -q "${TORCH[@]}" "$TRANSFORMERS"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
echo "transformers engine: $venv/bin/python (EVALS_ENGINE_PYTHON_TRANSFORMERS; the default when set up here)"
