#!/usr/bin/env bash
# Reproduce one paper table:  reproduce/run.sh TABLE [--dry-run] [--rows a,b] [--gpus 8] [--smoke] [--output-dir DIR] ...
# TABLE is a config name in reproduce/configs/ (steer_table1, posadv_table2, ...); `reproduce/run.sh --list` lists them.
# Python: $PYTHON, else the checkout's .venv, else python3 (the Docker image).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then py="$here/../.venv/bin/python"; else py=python3; fi
fi
if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" || "$1" == "--list" ]]; then
  echo "usage: reproduce/run.sh TABLE [options]   (options: reproduce/run.sh TABLE --help)"
  echo "tables:"; for f in "$here"/configs/*.yaml; do echo "  $(basename "$f" .yaml)"; done
  [[ $# -ge 1 ]] && exit 0 || exit 2
fi
table="$1"; shift
config="$here/configs/$table.yaml"
if [[ ! -f "$config" ]]; then
  echo "reproduce/run.sh: no table '$table' (no $config); see reproduce/run.sh --list" >&2; exit 2
fi
exec "$py" "$here/run_table.py" --config "$config" "$@"
