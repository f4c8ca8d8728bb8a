#!/usr/bin/env bash
# Reproduce the table "Jin et al.: Rand-Pos-Clip (random zeroing of positive-advantage tokens)".
# Config (recipe, rows, paper numbers, each value with its source): reproduce/configs/posadv_rand_pos_clip.yaml
# Usage: reproduce/posadv_rand_pos_clip.sh [--dry-run] [--rows a,b] [--gpus 8] [--nodes 1] [--vllm-tp 1] [--smoke] [--output-dir DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/run_table.py" --config "$here/configs/posadv_rand_pos_clip.yaml" "$@"
