"""Add STEER's weight-distribution metrics (issue 22) to tests/data/loss_metrics_reference.json, leaving
every existing key and value as it is. The values are computed independently of the loss's on-device
quantiles: torch.quantile (and a plain share) over the valid tokens' weights of a fresh method instance
on the same fixed batch and window statistics.

    .venv/bin/python tests/support/add_steer_weight_reference.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from steertest_loss_batch import method_cases, run_case  # noqa: E402

OUT = HERE.parent / "data" / "loss_metrics_reference.json"


def independent_weight_metrics(name: str, options) -> dict:
    """median, p10 and the share below 0.95 of the valid weights, by torch.quantile."""
    loss_fn, inputs = run_case(name, options)
    with torch.no_grad():
        weights = loss_fn.method.token_weights(inputs)
    valid = weights[inputs.action_mask.bool()].double()
    return {
        "method/weight_median": float(torch.quantile(valid, 0.5)),
        "method/weight_p10": float(torch.quantile(valid, 0.1)),
        "method/weight_frac_below_0.95": float((valid < 0.95).double().mean()),
    }


def main() -> None:
    payload = json.loads(OUT.read_text())
    added = []
    for case, name, options in method_cases():
        if name != "steer":
            continue
        metrics = payload["cases"][case]["metrics"]
        for key, value in independent_weight_metrics(name, options).items():
            if key in metrics:
                raise SystemExit(f"{case}: {key} is already in the reference; this script only adds keys")
            metrics[key] = value
        payload["cases"][case]["metrics"] = dict(sorted(metrics.items()))
        added.append(case)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, OUT)
    print(f"added the weight distribution to {added}")


if __name__ == "__main__":
    main()
