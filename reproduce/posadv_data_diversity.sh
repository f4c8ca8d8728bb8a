#!/usr/bin/env bash
# Reproduce the table "Jin et al.: training-data diversity (random vs K-means subsets of DAPO-Math-17K)".
# Config (recipe, rows, paper numbers, each value with its source): reproduce/configs/posadv_data_diversity.yaml
# Usage: reproduce/posadv_data_diversity.sh [--dry-run] [--rows a,b] [--gpus 8] [--nodes 1] [--vllm-tp 1] [--smoke] [--output-dir DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/run_table.py" --config "$here/configs/posadv_data_diversity.yaml" "$@"
