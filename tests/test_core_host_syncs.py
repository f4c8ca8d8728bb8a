"""Issue 24: core depends on nothing above it, a loss call reads the device at most twice, and the logged
metrics are those of the implementation before the metrics became device tensors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from steertest_loss_batch import count_host_syncs, method_cases, run_case  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "data" / "loss_metrics_reference.json"
CASES = method_cases()
MAX_HOST_SYNCS = 2


def test_core_loss_imports_nothing_from_methods():
    code = (
        "import sys, openrlhf_steer.core.loss, openrlhf_steer.core.advantages, openrlhf_steer.core.estimators\n"
        "bad = sorted(m for m in sys.modules if m.startswith('openrlhf_steer.methods'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_method_satisfies_the_core_hook_protocols():
    from openrlhf_steer.core.hooks import AdvantageHooks, LossHooks, NeutralHooks
    from openrlhf_steer.methods import Method, build_method

    for obj in (Method(), build_method("steer"), NeutralHooks()):
        assert isinstance(obj, LossHooks) and isinstance(obj, AdvantageHooks)


def test_counter_counts_a_host_read():
    """The counter itself: a float() of a tensor is one read, tensor arithmetic none."""
    x = torch.ones(3)
    with count_host_syncs() as calls:
        y = (x * 2).sum()
    assert calls == []
    with count_host_syncs() as calls:
        float(y), bool(y > 0), y.item(), y.tolist()
    assert calls == ["__float__", "__bool__", "item", "tolist"]


@pytest.mark.parametrize("case,name,options", CASES, ids=[c[0] for c in CASES])
def test_at_most_two_host_syncs_per_loss_call(case, name, options):
    loss_fn, inputs = run_case(name, options)
    with count_host_syncs() as calls:
        loss, metrics = loss_fn(inputs)
    assert len(calls) <= MAX_HOST_SYNCS, (case, calls)
    loss.backward()  # the loss still has its graph


@pytest.mark.parametrize("case,name,options", CASES, ids=[c[0] for c in CASES])
def test_metrics_equal_the_pre_refactor_reference(case, name, options):
    """tests/data/loss_metrics_reference.json was produced by the pre-refactor implementation (float metrics,
    29-35 host reads per call) at commit c03bf14 (core/loss.py and the methods as at 7a53e81), with
    tests/support/make_loss_metrics_reference.py; the option variants added later (steer binary/linear/
    asymmetric, quadrant quantile, pos_adv_reweight entropy, forking_tokens current) by the same script in a
    checkout of 167620b, whose core and methods are the pre-refactor ones (each such case records its commit)."""
    reference = json.loads(REFERENCE.read_text())["cases"][case]
    loss_fn, inputs = run_case(name, options)
    loss, metrics = loss_fn(inputs)
    assert float(loss.detach()) == pytest.approx(reference["loss"], abs=1e-6)
    assert sorted(metrics) == sorted(reference["metrics"])
    for key, value in reference["metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key


def test_nan_input_still_raises_with_the_field_name():
    loss_fn, inputs = run_case("grpo", {})
    inputs.old_log_probs[0, 0] = float("nan")
    with pytest.raises(ValueError, match="LossInputs.old_log_probs contains NaN"):
        loss_fn(inputs)
