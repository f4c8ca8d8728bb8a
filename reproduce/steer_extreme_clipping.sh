#!/usr/bin/env bash
# Reproduce the table "STEER: extreme clipping (eps_low 0.99, eps_high 5)".
# Config (recipe, rows, paper numbers, each value with its source): reproduce/configs/steer_extreme_clipping.yaml
# Usage: reproduce/steer_extreme_clipping.sh [--dry-run] [--rows a,b] [--gpus 8] [--nodes 1] [--vllm-tp 1] [--smoke] [--output-dir DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/run_table.py" --config "$here/configs/steer_extreme_clipping.yaml" "$@"
