"""Mechanism claims of the demo: each statistic on a hand-built batch, against values computed by hand."""

import math

import pytest
import torch

from openrlhf_steer.apps.demo.batch import build_batch, completion_logprobs
from openrlhf_steer.apps.demo.mechanism import CLIP, OneStepProbe, prefix_states
from openrlhf_steer.apps.demo.mechanism_claims import MECHANISM_CLAIMS, evaluate_mechanism_claims
from openrlhf_steer.apps.demo.mechanism_math import (
    equal_norm_scale,
    first_order_change,
    paper_omega,
    quadrant_masks,
    ratio_through_origin,
    sampled_logit_step,
    softmax_entropy,
    tabular_step,
    upper_tail,
    weight_distribution,
)
from openrlhf_steer.apps.demo.models import build_char_tokenizer, build_tiny_model

D = torch.float64


def binary_entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def two_token_state(p: float):
    """Logits [1, 2] of a 2-token softmax whose token 0 has probability p."""
    return torch.tensor([[math.log(p / (1 - p)), 0.0]], dtype=D)


@pytest.mark.parametrize("p, w, lr", [(0.3, 1.0, 0.1), (0.8, -0.5, 0.05), (0.5, 2.0, 1e-3)])
def test_tabular_step_changes_entropy_as_the_closed_form(p, w, lr):
    # Gradient of w log p_0 w.r.t. (z0, z1) is w (1 - p, -(1 - p)): z0 - z1 grows by 2 lr w (1 - p).
    z = two_token_state(p)
    new = tabular_step(z, torch.tensor([0]), torch.tensor([0]), torch.tensor([w], dtype=D), lr)
    gap = math.log(p / (1 - p)) + 2 * lr * w * (1 - p)
    p_new = 1 / (1 + math.exp(-gap))
    measured = float(softmax_entropy(new)[0] - softmax_entropy(z)[0])
    assert measured == pytest.approx(binary_entropy(p_new) - binary_entropy(p), abs=1e-14)


def test_omega_of_a_two_token_state_and_its_first_order_ratio():
    p, w = 0.3, 1.0
    z = two_token_state(p)
    log_p = torch.tensor([math.log(p)], dtype=D)
    h = torch.tensor([binary_entropy(p)], dtype=D)
    for lr in (1e-2, 1e-4):
        # log p + H = -(1 - p) log((1 - p)/p), so Omega = lr w (1 - p)^3 log((1 - p)/p)
        omega = float(paper_omega(log_p, log_p, h, torch.tensor([w], dtype=D), lr)[0])
        assert omega == pytest.approx(lr * w * (1 - p) ** 3 * math.log((1 - p) / p), rel=1e-12)
    lr = 1e-6
    omega = paper_omega(log_p, log_p, h, torch.tensor([w], dtype=D), lr)
    full = tabular_step(z, torch.tensor([0]), torch.tensor([0]), torch.tensor([w], dtype=D), lr)
    measured = softmax_entropy(full) - softmax_entropy(z)
    # dH/d(z0 - z1) = p (1 - p) log((1 - p)/p); the full step moves z0 - z1 by 2 lr w (1 - p):
    # measured / Omega -> 2 p / (1 - p) = 6/7 for p = 0.3, not 1
    assert ratio_through_origin(measured, omega) == pytest.approx(2 * p / (1 - p), rel=1e-5)
    proof = sampled_logit_step(z, torch.tensor([0]), torch.tensor([0]), torch.tensor([w], dtype=D), lr)
    # the proof's update moves z0 alone by lr w (1 - p): measured / Omega -> p / (1 - p)
    measured_proof = softmax_entropy(proof) - softmax_entropy(z)
    assert ratio_through_origin(measured_proof, omega) == pytest.approx(p / (1 - p), rel=1e-5)
    assert float(first_order_change(z, full)[0]) == pytest.approx(float(measured[0]), rel=1e-5)


def test_quadrants_follow_the_sign_of_a_and_of_log_p_plus_h():
    # log p + H: 0.9 with H 0.5 -> -0.105 + 0.5 > 0 (delta < 0); 0.1 with H 0.5 -> -2.30 + 0.5 < 0 (delta > 0)
    log_p = torch.log(torch.tensor([[0.9, 0.1, 0.1, 0.9, 0.5, 0.9]], dtype=D))
    entropy = torch.full_like(log_p, 0.5)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, 0.0, 1.0]], dtype=D)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]], dtype=D)
    masks = quadrant_masks(adv, log_p, entropy, mask)
    assert masks["I"].tolist() == [[True, False, False, False, False, False]]
    assert masks["II"].tolist() == [[False, True, False, False, False, False]]
    assert masks["III"].tolist() == [[False, False, True, False, False, False]]
    assert masks["IV"].tolist() == [[False, False, False, True, False, False]]


def test_tail_norm_and_weight_statistics_by_hand():
    values = torch.tensor([-5.0, 1.0, 2.0, -3.0, 4.0], dtype=D)
    # |values| sorted 1 2 3 4 5; the 0.9 quantile (linear) sits at rank 3.6: 4 + 0.6 * (5 - 4)
    assert upper_tail(values, 0.9) == pytest.approx(4.6)
    assert equal_norm_scale(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 0.0])) == pytest.approx(5.0)
    weights = torch.tensor([[1.0, 0.9, 0.8, 1.0, 0.5]], dtype=D)
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    stats = weight_distribution(weights, mask)
    # valid 0.8 0.9 1.0 1.0: median 0.95, 10th percentile 0.8 + 0.3 * 0.1, two of four below 0.95
    assert stats == pytest.approx({"median": 0.95, "p10": 0.83, "share_below_0.95": 0.5})
    with pytest.raises(ValueError, match="direction is zero"):
        equal_norm_scale(torch.ones(2), torch.zeros(2))


def tiny_probe():
    tokenizer = build_char_tokenizer()
    torch.manual_seed(0)
    model = build_tiny_model("xxs", seed=0)
    prompts = [tokenizer.encode("7="), tokenizer.encode("7="), tokenizer.encode("12=")]
    eos = tokenizer.eos_token_id
    completions = [tokenizer.encode("3+4") + [eos], tokenizer.encode("0+7") + [eos], tokenizer.encode("9+3") + [eos]]
    batch = build_batch(prompts, completions, tokenizer.pad_token_id, eos)
    adv = torch.tensor([1.0, -1.0, 0.5])[:, None].expand_as(batch.action_mask).clone()
    return model, batch, adv


def test_subset_step_is_the_gradient_of_the_hand_written_loss():
    model, batch, adv = tiny_probe()
    probe = OneStepProbe(model, batch, adv, None, None, 1.0)
    subset = (probe.advantages > 0) & probe.mask.bool()
    direction, _ = probe.descent("grpo", {}, CLIP, token_mask=subset)
    # on-policy, r = 1: -grad of -(1/N) sum_{t in subset} A_t log p_t
    probe.model.zero_grad(set_to_none=True)
    log_probs, _ = completion_logprobs(probe.model, batch, with_entropy=False)
    loss = -(probe.advantages * log_probs * subset.double()).sum() / probe.mask.sum()
    loss.backward()
    expected = -torch.cat([p.grad.reshape(-1) for p in probe.params])
    assert torch.allclose(direction, expected, atol=1e-12)
    # the step is measured from the same state: the probe restores theta
    change = probe.entropy_change(1e-3 * direction)
    assert float(change.abs().max()) > 0
    assert torch.equal(probe.entropy_change(torch.zeros_like(direction)), torch.zeros_like(change))


def test_prefix_states_share_a_row_for_equal_prefixes():
    _, batch, _ = tiny_probe()
    index, count = prefix_states(batch)
    # rows 0 and 1 share the prompt "7=" (first completion token's state), then differ
    assert index[0, 0] == index[1, 0]
    assert index[0, 1] != index[1, 1]
    valid = int(batch.action_mask.sum())
    assert count == valid - 1


def record(step, subsets, high, low, grpo_tail, exp_tail, ratio):
    return {
        "step": step,
        "on_policy": {
            "tokens": 10,
            "subsets": {k: {"tokens": 0 if v is None else 3, "mean_dh_per_lr": v or 0.0} for k, v in subsets.items()},
            "equal_norm": {
                "grpo": {"tail_per_lr": grpo_tail},
                "steer_exp": {"tail_per_lr": exp_tail},
                "steer_binary": {"tail_per_lr": exp_tail},
            },
            "tabular": {"by_lr": [{"lr": 1e-2, "ratio_to_omega": 5.0}, {"lr": 1e-4, "ratio_to_omega": ratio}]},
        },
        "off_policy": {
            "base": {"mean_dh_per_lr": 1.0},
            "high": {"mean_dh_per_lr": high},
            "low": {"mean_dh_per_lr": low},
        },
    }


def test_mechanism_claims_statistics_and_verdicts_by_hand():
    subsets = {"I": -1.0, "II": None, "III": -2.0, "IV": 3.0, "positive": -1.0, "negative": 2.0}
    mech = {
        0: {
            "checkpoints": [
                record(0, subsets, 1.5, 0.5, 2.0, 1.0, 1.0),
                record(20, {**subsets, "II": 1.0}, 1.1, 0.9, 2.0, 1.5, 1.02),
            ]
        },
        1: {"checkpoints": [record(0, {**subsets, "I": -3.0}, 1.3, 0.7, 2.0, 1.0, 0.98)]},
    }
    rows = {r["id"]: r for r in evaluate_mechanism_claims(mech)}
    # M1-I: seed 0 mean(-1, -1) = -1, seed 1 -3 -> mean -2, SE 1, interval [-4, 0]: not held (0 is not < 0)
    assert rows["M1-I"]["per_seed"] == [-1.0, -3.0]
    assert rows["M1-I"]["interval"] == pytest.approx([-4.0, 0.0])
    assert rows["M1-I"]["held"] is False
    # M1-II: defined only at seed 0's second checkpoint: one seed, skipped
    assert rows["M1-II"]["held"] is None and "1 seed" in rows["M1-II"]["skipped"]
    # M3-high: seed 0 mean(0.5, 0.1) = 0.3, seed 1 0.3 -> interval [0.3, 0.3] > 0
    assert rows["M3-high"]["value"] == pytest.approx(0.3) and rows["M3-high"]["held"] is True
    assert rows["M3-low"]["value"] == pytest.approx(-0.3) and rows["M3-low"]["held"] is True
    # M4-exp: seed 0 mean(1.0, 0.5) = 0.75, seed 1 1.0
    assert rows["M4-exp"]["per_seed"] == pytest.approx([0.75, 1.0])
    # M5 reads the smallest step: seed 0 mean(1.0, 1.02) = 1.01, seed 1 0.98 -> inside [0.9, 1.1]
    assert rows["M5"]["per_seed"] == pytest.approx([1.01, 0.98]) and rows["M5"]["held"] is True
    assert all(r["level"] == "mechanism" for r in rows.values())
    assert len(rows) == len(MECHANISM_CLAIMS)
    skipped = evaluate_mechanism_claims(None)
    assert all(r["held"] is None and r["skipped"] == "mechanism stage not run" for r in skipped)


class _FakeRun:
    """What SteerWeightLogger.attach reads from a MethodRun: its loss and its observer lists."""

    def __init__(self, loss_fn):
        self.loss_fn = loss_fn
        self.observers = []
        self.step_observers = []

    def window(self, micro_batches):
        """One optimizer window as MethodRun.optimizer_step runs it: a loss call, then the loss observers."""
        for observer in self.step_observers:
            observer.before_step(self, None, None, [])
        for inputs in micro_batches:
            self.loss_fn(inputs)
            for observe in self.observers:
                observe(inputs, self.loss_fn.loss_config)
        for observer in self.step_observers:
            observer.after_step(self, None, None, [])


def _ten_token_batch(valid: int = 10):
    from openrlhf_steer.methods import LossInputs

    # ``valid`` tokens with distinct |Omega| (probabilities differ, A = 1), then padding
    p = torch.tensor([[0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]], dtype=D)
    log_p = p.log()
    mask = torch.zeros_like(p)
    mask[0, :valid] = 1
    return LossInputs(
        log_probs=log_p,
        old_log_probs=log_p,
        advantages=torch.ones_like(p),
        action_mask=mask,
        entropy=torch.full_like(p, 1.5),
        old_entropy=torch.full_like(p, 1.5),
    )


def test_steer_weight_log_reports_the_binary_mapping_by_hand():
    from openrlhf_steer.apps.demo.weight_log import SteerWeightLogger
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.methods import LossConfig, build_method

    run = _FakeRun(PolicyLoss(LossConfig(), build_method("steer", {"mapping": "binary", "lambda_min": 0.7})))
    logger = SteerWeightLogger.attach(run)
    assert run.step_observers == [logger] and run.observers == [logger.observe_loss]
    run.window([_ten_token_batch()])
    run.window([_ten_token_batch()])
    row = logger.take_row(3)
    # the top 20% of 10 tokens by |Omega| (2 tokens) get 0.7, the others 1: sorted 0.7 0.7 1 x 8
    # median 1, 10th percentile at rank 0.9 between 0.7 and 0.7, share below 0.95 = 2/10
    assert row == pytest.approx({"step": 3, "weights/median": 1.0, "weights/p10": 0.7, "weights/share_below_0.95": 0.2})
    assert logger.take_row(4) is None  # reset after a row
    # a window of 10 + 5 valid tokens: the 5-token micro-batch has 1 token at 0.7 (sorted 0.7 1 1 1 1:
    # median 1, p10 at rank 0.4 = 0.7 + 0.4 * 0.3 = 0.82, share 1/5); the window is the token-weighted mean
    # of its micro-batches (core.metrics): p10 (10 * 0.7 + 5 * 0.82) / 15, share (2 + 1) / 15
    run.window([_ten_token_batch(), _ten_token_batch(valid=5)])
    row = logger.take_row(5)
    expected = {"step": 5, "weights/median": 1.0, "weights/p10": (10 * 0.7 + 5 * 0.82) / 15}
    assert row == pytest.approx({**expected, "weights/share_below_0.95": 3 / 15})


def test_steer_weight_log_refuses_a_method_without_the_metrics():
    from openrlhf_steer.apps.demo.weight_log import SteerWeightLogger
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.methods import LossConfig, build_method

    run = _FakeRun(PolicyLoss(LossConfig(), build_method("grpo")))
    SteerWeightLogger.attach(run)
    with pytest.raises(ValueError, match="steer runs only"):
        run.window([_ten_token_batch()])


def test_optimizer_registry_and_specs_keep_their_stored_form():
    from openrlhf_steer.apps.demo.config import METHOD_SPECS, RLConfig
    from openrlhf_steer.apps.demo.optimizers import build_optimizer

    params = [torch.nn.Parameter(torch.ones(2))]
    rl = RLConfig(lr=1e-3)
    adamw = build_optimizer(params, rl, {})
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["lr"] == 1e-3
    sgd = build_optimizer(params, rl, {"name": "sgd", "lr": 0.1})
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="MethodSpec.optimizer name='adam'"):
        build_optimizer(params, rl, {"name": "adam"})
    # AdamW specs store no optimizer key (earlier runs resume); the SGD runs say what they are
    assert "optimizer" not in METHOD_SPECS["grpo_extreme"].to_dict()
    sgd_spec = METHOD_SPECS["steer_extreme_binary_sgd"]
    assert sgd_spec.to_dict()["optimizer"] == {"name": "sgd", "lr": 0.1}
    assert "not the papers' optimizer" in sgd_spec.note
