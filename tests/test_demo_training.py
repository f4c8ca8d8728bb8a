"""The demo's optimizer step aggregates exactly like one token-mean loss over the whole window.

Reference: the core PolicyLoss called once on the concatenated window (local masked mean, and for
STEER with stat_scope=mini_batch the window statistics of that same set). The demo splits the window
into micro-batches, passes num_tokens = the window's token count, and accumulates gradients; the
accumulated gradient must equal the reference gradient.
"""

import pytest
import torch

from openrlhf_steer.core.advantages import compute_advantages
from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.methods import GroupInputs, LossConfig

from openrlhf_steer.apps.demo.config import MethodSpec, RLConfig
from openrlhf_steer.apps.demo.models import build_char_tokenizer, build_tiny_model, save_policy
from openrlhf_steer.apps.demo.rollout import collect_rollout
from openrlhf_steer.apps.demo.task import get_task
from openrlhf_steer.apps.demo.train import MethodRun


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_start") / "model"
    save_policy(build_tiny_model("xxs", seed=0), build_char_tokenizer(), d)
    return d


@pytest.mark.parametrize(
    "method,config,loss",
    [
        ("grpo", {}, {"eps_low": 0.2, "eps_high": 0.2}),
        ("steer", {"stat_scope": "mini_batch"}, {"eps_low": 0.2, "eps_high": 0.28, "dual_clip": 10.0}),
    ],
)
def test_window_gradient_equals_one_token_mean_loss(start_dir, tmp_path, method, config, loss):
    task = get_task("add1")
    pool, _ = task.split(0, 8)
    # lr ~ 0 and no clipping of the norm: the step leaves .grad as accumulated and the model unchanged
    rl = RLConfig(
        steps=1,
        prompts_per_step=4,
        samples_per_prompt=4,
        mini_batches=1,
        micro_batch_size=5,
        lr=1e-30,
        grad_clip=1e9,
        max_new_tokens=3,
    )
    spec = MethodSpec("t", method, config, loss, "")
    run = MethodRun(spec, start_dir, tmp_path / "run", task, pool, rl)
    torch.manual_seed(0)
    rollout = collect_rollout(run.model, run.tokenizer, task, pool[:4], samples_per_prompt=4, max_new_tokens=3)
    rollout.rewards = torch.tensor([1.0, 0.0, 0.0, 1.0] * 4)  # mixed groups: nonzero advantages
    advantages = compute_advantages(GroupInputs(rollout.rewards, rollout.group_ids, rollout.batch.action_mask))
    micro = [torch.arange(0, 5), torch.arange(5, 10), torch.arange(10, 16)]

    run.model.train()
    full = run.loss_inputs(rollout, advantages, torch.arange(16), True, None)
    if run.method.needs_window_stats:
        with torch.no_grad():
            full.window_stats = run.method.window_stats(
                [run.loss_inputs(rollout, advantages, torch.arange(16), False, None)]
            )
    ref_loss, ref_metrics = PolicyLoss(LossConfig(**loss), run.method)(full)
    ref_grads = torch.autograd.grad(ref_loss, list(run.model.parameters()), allow_unused=True)
    assert ref_metrics["weights/min"] < 1.0 if method == "steer" else ref_metrics["weights/min"] == 1.0

    stats = run.optimizer_step(rollout, advantages, micro)  # the runtime seeds the window
    assert stats["loss/total"] == pytest.approx(float(ref_loss.detach()), rel=1e-5, abs=1e-8)
    assert stats["tokens/valid"] == float(rollout.batch.action_mask.sum())
    for p, g in zip(run.model.parameters(), ref_grads):
        if g is not None:
            assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-7)
    assert any(g is not None and float(g.abs().max()) > 0 for g in ref_grads)
