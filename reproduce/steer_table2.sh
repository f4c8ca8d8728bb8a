#!/usr/bin/env bash
# STEER Table 2: weight-mapping ablation on Qwen2.5-Math-7B (config: reproduce/configs/steer_table2.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" steer_table2 "$@"
