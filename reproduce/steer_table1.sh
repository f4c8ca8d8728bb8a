#!/usr/bin/env bash
# STEER Table 1: benchmark results on Qwen2.5-Math-7B (config: reproduce/configs/steer_table1.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" steer_table1 "$@"
