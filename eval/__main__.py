"""`python -m openrlhf_steer_eval`: the `openrlhf-steer-eval` CLI."""

import sys

from openrlhf_steer_eval.cli import main

sys.exit(main())
