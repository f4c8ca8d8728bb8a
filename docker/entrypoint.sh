#!/usr/bin/env bash
# Entry point of the openrlhf-steer image.
#
#   docker run --gpus all IMAGE reproduce/<table>.sh [--dry-run] [--rows a,b] [--gpus 8] ...
#   docker run --gpus all IMAGE train <OpenRLHF train_ppo_ray flags> --entropy.method steer ...
#   docker run --gpus all IMAGE eval --model /models/ckpt --backend vllm --benchmarks aime24 --output-dir runs/eval
#   docker run IMAGE prepare-data --source BytedTsinghua-SIA/DAPO-Math-17k --output runs/data/dapo17k.jsonl
#   docker run --gpus all --network host IMAGE ray-head            # multi-node: on the first node
#   docker run --gpus all --network host IMAGE ray-worker HOST:6379 # multi-node: on every other node
#   docker run IMAGE <any command>
set -euo pipefail
cd /opt/openrlhf-steer
export PYTHON="${PYTHON:-python}"

usage() {
  sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'
  echo
  echo "Reproduction scripts:"
  ls reproduce/*.sh | sed 's/^/  /'
}

case "${1:---help}" in
  -h|--help|help)
    usage ;;
  reproduce/*.sh|*.sh)
    script="$1"; shift
    [[ -f "$script" ]] || { echo "no such script: $script (see --help)" >&2; exit 2; }
    exec bash "$script" "$@" ;;
  train)
    shift; exec "$PYTHON" -m openrlhf_steer.apps.train "$@" ;;
  eval)
    shift; exec openrlhf-steer-eval "$@" ;;
  prepare-data)
    shift; exec "$PYTHON" reproduce/prepare_data.py "$@" ;;
  ray-head)
    shift; exec ray start --head --port "${RAY_PORT:-6379}" --dashboard-host 0.0.0.0 --block "$@" ;;
  ray-worker)
    shift
    [[ $# -ge 1 ]] || { echo "usage: ray-worker HEAD_HOST:PORT" >&2; exit 2; }
    address="$1"; shift
    exec ray start --address "$address" --block "$@" ;;
  *)
    exec "$@" ;;
esac
