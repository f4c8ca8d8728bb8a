"""`python -m openrlhf_steer`: the `openrlhf-steer` CLI."""

import sys

from openrlhf_steer.apps.cli import main

sys.exit(main())
