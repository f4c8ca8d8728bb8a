"""Write tests/data/loss_metrics_reference.json: the metric dict of one PolicyLoss call per method case on
the fixed batch of steertest_loss_batch. Run once with the implementation whose values are the reference:

    .venv/bin/python tests/support/make_loss_metrics_reference.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from steertest_loss_batch import method_cases, run_case  # noqa: E402

OUT = HERE.parent / "data" / "loss_metrics_reference.json"


def main() -> None:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    cases = {}
    for case, name, options in method_cases():
        loss_fn, inputs = run_case(name, options)
        loss, metrics = loss_fn(inputs)
        cases[case] = {"loss": float(loss.detach()), "metrics": {k: float(v) for k, v in sorted(metrics.items())}}
    payload = {"commit": commit, "cases": cases}
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT} ({len(cases)} cases) at {commit}")


if __name__ == "__main__":
    main()
