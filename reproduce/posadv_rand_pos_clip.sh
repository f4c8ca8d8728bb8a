#!/usr/bin/env bash
# Reproduce the table "Jin et al.: Rand-Pos-Clip (random zeroing of positive-advantage tokens)".
# Config (recipe, rows, paper numbers, each value with its source): reproduce/configs/posadv_rand_pos_clip.yaml
# Usage: reproduce/posadv_rand_pos_clip.sh [--dry-run] [--rows a,b] [--gpus 8] [--nodes 1] [--vllm-tp 1] [--smoke] [--output-dir DIR]
# Python: $PYTHON, else the checkout's .venv, else python3 (the Docker image).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then py="$here/../.venv/bin/python"; else py=python3; fi
fi
exec "$py" "$here/run_table.py" --config "$here/configs/posadv_rand_pos_clip.yaml" "$@"
