#!/usr/bin/env bash
# Pos-Adv Table 3: training-data diversity (K-means vs random subsets of DAPO-Math-17K) (config: reproduce/configs/posadv_table3.yaml). Options: reproduce/run.sh --help.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" posadv_table3 "$@"
