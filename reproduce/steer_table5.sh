#!/usr/bin/env bash
# STEER Table 5: Qwen2.5-Math-1.5B and Qwen2.5-14B (config: reproduce/configs/steer_table5.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" steer_table5 "$@"
