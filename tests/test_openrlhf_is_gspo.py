"""OpenRLHF 0.11.2's own loss options composed with our methods.

* IS correction (``--algo.advantage.is_correction_*``): with ``grpo`` our loss equals OpenRLHF's
  ``PolicyLoss`` for every setting; every method composes with every setting, the coefficient
  checked against a loop-by-loop reference written from the formulas.
* GSPO (``--actor.policy_loss_type gspo``): with ``grpo`` our loss equals OpenRLHF's GSPO loss;
  token weights apply before the sequence mean (hand-computed loss and gradient); clip masks are
  refused with the reason; the launcher accepts both options and refuses what cannot work.
"""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("openrlhf")

from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss  # noqa: E402

from openrlhf_steer.integration.policy_loss import EntropyControlPolicyLoss, LossCallContext  # noqa: E402
from openrlhf_steer.core.loss import PolicyLoss  # noqa: E402
from openrlhf_steer.methods import available_methods, build_method  # noqa: E402
from openrlhf_steer.core.types import LossConfig, LossInputs
from openrlhf_steer.methods.base import Method  # noqa: E402

# (level, mode, gating, threshold): every combination OpenRLHF 0.11.2 accepts.
IS_SETTINGS = [
    ("token", "mask", "ratio", (0.8, 1.25)),
    ("token", "clip", "ratio", (0.8, 1.25)),
    ("token", "mask", "binary_kl", (0.0, 0.01)),
    ("token", "mask", "tv", (0.0, 0.05)),
    ("seq", "mask", "ratio", (0.9, 1.1)),
    ("seq", "mask", "binary_kl", (0.0, 0.01)),
    ("seq", "mask", "tv", (0.0, 0.05)),
]
NORMALISERS = [None, (2, 37.0, 6.0)]


def _tensors(seed=0, b=5, t=9):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, t, generator=g) * 3
    rollout = old + 0.25 * torch.randn(b, t, generator=g)
    new = (old + 0.4 * torch.randn(b, t, generator=g)).requires_grad_(True)
    adv = torch.randn(b, 1, generator=g).expand(b, t).clone()
    mask = torch.rand(b, t, generator=g) > 0.25
    mask[0] = False  # an empty row
    mask[1, :2] = True
    return new, old, rollout, adv, mask


def _normaliser_kwargs(normaliser):
    if normaliser is None:
        return {}
    return dict(
        dp_size=normaliser[0],
        batch_num_tokens=torch.tensor(normaliser[1]),
        global_batch_size=torch.tensor(normaliser[2]),
    )


def _is_kwargs(setting):
    level, mode, gating, threshold = setting
    return dict(
        is_correction_level=level,
        is_correction_mode=mode,
        is_correction_gating=gating,
        is_correction_threshold=list(threshold),
    )


def reference_is(old, rollout, mask, setting):
    """Loop-by-loop IS coefficient, filter fraction and vllm_kl from the formulas (python floats)."""
    level, mode, gating, (low, high) = setting
    b, t = old.shape
    clampp = lambda x: min(max(x, 1e-6), 1 - 1e-6)

    def token_stat(i, j):
        lr = float(old[i, j] - rollout[i, j])
        if gating == "ratio":
            return lr
        p, q = clampp(math.exp(float(rollout[i, j]))), clampp(math.exp(float(old[i, j])))
        if gating == "binary_kl":
            return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
        return abs(p - q)

    coef = torch.zeros(b, t)
    filtered_tokens, valid_tokens, filtered_rows = 0, 0, 0
    for i in range(b):
        valid = [j for j in range(t) if mask[i, j]]
        if level == "seq":
            mean = sum(token_stat(i, j) for j in valid) / len(valid) if valid else float("nan")
            row_stat = math.exp(mean) if gating == "ratio" else mean
            row_keep = low <= row_stat <= high
            filtered_rows += not row_keep
        for j in range(t):
            ratio = math.exp(float(old[i, j] - rollout[i, j]))
            if level == "seq":
                keep = row_keep
            else:
                stat = ratio if gating == "ratio" else token_stat(i, j)
                keep = low <= stat <= high
            if mode == "clip":
                coef[i, j] = min(max(ratio, low), high)
            else:
                coef[i, j] = ratio if keep else 0.0
            if mask[i, j]:
                valid_tokens += 1
                filtered_tokens += not keep
    filter_ratio = filtered_rows / b if level == "seq" else filtered_tokens / valid_tokens
    vllm_kl = float(((rollout - old) * mask).sum() / mask.sum())
    return coef, filter_ratio, vllm_kl


# ---------------------------------------------------------------------------------- IS correction
@pytest.mark.parametrize("setting", IS_SETTINGS, ids=lambda s: "-".join(map(str, s[:3])))
@pytest.mark.parametrize("token_level", [True, False])
@pytest.mark.parametrize("dual_clip", [None, 3.0])
@pytest.mark.parametrize("normaliser", NORMALISERS)
def test_grpo_with_is_correction_equals_openrlhf(setting, token_level, dual_clip, normaliser):
    kwargs = dict(
        clip_eps_low=0.2, clip_eps_high=0.28, dual_clip=dual_clip, token_level_loss=token_level, **_is_kwargs(setting)
    )
    theirs, ours = OpenRLHFPolicyLoss(**kwargs), EntropyControlPolicyLoss(**kwargs)
    agg = "token-mean" if token_level else "seq-mean-token-mean"
    ours.bind(build_method("grpo"), LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=dual_clip, loss_agg_mode=agg))
    new, old, rollout, adv, mask = _tensors()
    extra = _normaliser_kwargs(normaliser)
    out_theirs = theirs(new, old, adv, action_mask=mask, rollout_log_probs=rollout, **extra)
    (grad_theirs,) = torch.autograd.grad(out_theirs[0], new)
    out_ours = ours(new, old, adv, action_mask=mask, rollout_log_probs=rollout, **extra)
    (grad_ours,) = torch.autograd.grad(out_ours[0], new)
    assert float(out_ours[0].detach()) == pytest.approx(float(out_theirs[0].detach()), rel=1e-5, abs=1e-7)
    assert torch.allclose(grad_ours, grad_theirs, rtol=1e-5, atol=1e-7)
    assert float(out_ours[3]) == pytest.approx(float(out_theirs[3]), rel=1e-6)  # vllm_kl
    assert float(out_ours[4]) == pytest.approx(float(out_theirs[4]), rel=1e-6)  # is_filter_ratio
    # The correction changed the loss (some units are filtered or reweighted).
    plain = OpenRLHFPolicyLoss(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip=dual_clip, token_level_loss=token_level)
    assert abs(float(plain(new, old, adv, action_mask=mask, **extra)[0].detach()) - float(out_ours[0].detach())) > 1e-6


def test_reference_is_matches_openrlhf_statistics():
    """The loop reference agrees with OpenRLHF's own logged statistics (so it is a fair judge below)."""
    new, old, rollout, adv, mask = _tensors(seed=4)
    for setting in IS_SETTINGS:
        theirs = OpenRLHFPolicyLoss(**_is_kwargs(setting))
        _, _, _, vllm_kl, filter_ratio = theirs(new, old, adv, action_mask=mask, rollout_log_probs=rollout)
        _, ref_filter, ref_kl = reference_is(old, rollout, mask, setting)
        assert float(filter_ratio) == pytest.approx(ref_filter, abs=1e-6), setting
        assert float(vllm_kl) == pytest.approx(ref_kl, rel=1e-5), setting
        assert 0.0 < ref_filter < 1.0, setting  # the thresholds filter some units, not all


def _context(seed, new, old):
    g = torch.Generator().manual_seed(seed + 100)
    entropy = torch.rand(new.shape, generator=g) * 2
    return dict(
        entropy=entropy,
        old_entropy=entropy + 0.1,
        ref_log_probs=old - 0.05,
        step=3,
        total_steps=10,
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.mark.parametrize("method", available_methods())
def test_every_method_composes_with_every_is_setting(method):
    """EntropyControlPolicyLoss with IS correction = our core loss with the reference coefficient on the policy term."""
    new, old, rollout, adv, mask = _tensors(seed=2)
    extra = _normaliser_kwargs((1, 30.0, 4.0))
    cfg = LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=3.0)
    for setting in IS_SETTINGS:
        ours = EntropyControlPolicyLoss(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip=3.0, **_is_kwargs(setting))
        ours.bind(build_method(method), cfg)
        ours.binding.context = LossCallContext(**_context(7, new, old))
        loss, _, _, vllm_kl, filter_ratio = ours(new, old, adv, action_mask=mask, rollout_log_probs=rollout, **extra)
        (grad,) = torch.autograd.grad(loss, new)

        coef, ref_filter, ref_kl = reference_is(old, rollout, mask, setting)
        ctx = _context(7, new, old)
        inputs = LossInputs(log_probs=new, old_log_probs=old, advantages=adv, action_mask=mask, **ctx)
        expected, _ = PolicyLoss(cfg, build_method(method))(inputs, num_tokens=30.0, num_seqs=4.0, token_coef=coef)
        (expected_grad,) = torch.autograd.grad(expected, new)
        assert float(loss) == pytest.approx(float(expected), rel=1e-5, abs=1e-7), setting
        assert torch.allclose(grad, expected_grad, rtol=1e-5, atol=1e-7), setting
        assert float(vllm_kl) == pytest.approx(ref_kl, rel=1e-5)
        assert float(filter_ratio) == pytest.approx(ref_filter, abs=1e-6)


def test_is_coefficient_weighs_the_policy_term_only():
    """Extra terms (entropy bonus) are OpenRLHF-style separate terms: the coefficient leaves them alone."""
    new, old, rollout, adv, mask = _tensors(seed=5)
    setting = IS_SETTINGS[0]

    def loss(method, is_setting):
        kwargs = _is_kwargs(is_setting) if is_setting else {}
        fn = EntropyControlPolicyLoss(clip_eps_low=0.2, clip_eps_high=0.28, **kwargs)
        fn.bind(build_method(method, {"coef": 0.3} if method == "entropy_loss" else None), LossConfig(0.2, 0.28))
        fn.binding.context = LossCallContext(**_context(1, new, old))
        return float(fn(new, old, adv, action_mask=mask, rollout_log_probs=rollout)[0])

    bonus_with_is = loss("entropy_loss", setting) - loss("grpo", setting)
    bonus_without = loss("entropy_loss", None) - loss("grpo", None)
    entropy = _context(1, new, old)["entropy"]
    expected_bonus = -0.3 * float((entropy * mask).sum() / mask.sum())
    assert bonus_with_is == pytest.approx(expected_bonus, rel=1e-5)
    assert bonus_without == pytest.approx(expected_bonus, rel=1e-5)


def test_missing_rollout_log_probs_is_a_clear_error():
    ours = EntropyControlPolicyLoss(is_correction_level="token")
    ours.bind(build_method("steer"), LossConfig())
    new, old, _, adv, mask = _tensors()
    ours.binding.context = LossCallContext(**_context(0, new, old))
    with pytest.raises(ValueError, match="rollout_log_probs is None"):
        ours(new, old, adv, action_mask=mask, rollout_log_probs=None)


# ------------------------------------------------------------------------------------------- GSPO
@pytest.mark.parametrize("dual_clip", [None, 3.0])
@pytest.mark.parametrize("normaliser", NORMALISERS)
@pytest.mark.parametrize("is_setting", [None, IS_SETTINGS[0], IS_SETTINGS[4]], ids=["no-is", "is-token", "is-seq"])
@pytest.mark.parametrize("agg_flag", ["token-mean", "seq-mean-token-mean"])
def test_grpo_gspo_equals_openrlhf_gspo(dual_clip, normaliser, is_setting, agg_flag):
    kwargs = dict(
        clip_eps_low=3e-2,
        clip_eps_high=4e-2,
        dual_clip=dual_clip,
        policy_loss_type="gspo",
        token_level_loss=agg_flag == "token-mean",
        **(_is_kwargs(is_setting) if is_setting else {}),
    )
    theirs, ours = OpenRLHFPolicyLoss(**kwargs), EntropyControlPolicyLoss(**kwargs)
    ours.bind(
        build_method("grpo"), LossConfig(eps_low=3e-2, eps_high=4e-2, dual_clip=dual_clip, loss_agg_mode=agg_flag)
    )
    new, old, rollout, adv, mask = _tensors(seed=1)
    adv = adv.clone()
    adv[2] = -adv[2].abs()  # a negative group so the dual clip can act
    extra = _normaliser_kwargs(normaliser)
    out_theirs = theirs(new, old, adv, action_mask=mask, rollout_log_probs=rollout, **extra)
    (grad_theirs,) = torch.autograd.grad(out_theirs[0], new)
    out_ours = ours(new, old, adv, action_mask=mask, rollout_log_probs=rollout, **extra)
    (grad_ours,) = torch.autograd.grad(out_ours[0], new)
    assert float(out_ours[0].detach()) == pytest.approx(float(out_theirs[0].detach()), rel=1e-5, abs=1e-7)
    assert torch.allclose(grad_ours, grad_theirs, rtol=1e-5, atol=1e-7)
    assert out_ours[3] is None and out_ours[4] is None  # OpenRLHF logs no IS statistics under GSPO


class _FixedWeights(Method):
    name = "fixed_weights_for_test"

    def __init__(self, weights):
        super().__init__()
        self.weights = weights

    def token_weights(self, inputs):
        return self.weights


def test_gspo_token_weights_apply_before_the_sequence_mean():
    """Hand-written GSPO: s_i = exp(mean_t (lp - old)); L = 1/N sum_i 1/n_i sum_t w_t max(-A s, -A clip(s))."""
    new, old, _, adv, mask = _tensors(seed=3)
    g = torch.Generator().manual_seed(11)
    weights = torch.rand(new.shape, generator=g) * 2
    eps_low, eps_high = 0.05, 0.08
    loss, _ = PolicyLoss(
        LossConfig(eps_low=eps_low, eps_high=eps_high), _FixedWeights(weights), ratio_level="sequence"
    )(LossInputs(log_probs=new, old_log_probs=old, advantages=adv, action_mask=mask))
    (grad,) = torch.autograd.grad(loss, new)

    total, rows = 0.0, 0
    for i in range(new.shape[0]):
        idx = mask[i].nonzero().squeeze(-1)
        if idx.numel() == 0:
            continue
        s = torch.exp((new[i, idx] - old[i, idx]).mean())
        a = adv[i, idx]
        per_token = torch.maximum(-a * s, -a * s.clamp(1 - eps_low, 1 + eps_high))
        total = total + (weights[i, idx] * per_token).mean()
        rows += 1
    expected = total / rows
    (expected_grad,) = torch.autograd.grad(expected, new)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert torch.allclose(grad, expected_grad, rtol=1e-5, atol=1e-7)
    # The weights moved the loss away from plain GSPO.
    plain, _ = PolicyLoss(LossConfig(eps_low=eps_low, eps_high=eps_high), ratio_level="sequence")(
        LossInputs(log_probs=new, old_log_probs=old, advantages=adv, action_mask=mask)
    )
    assert abs(float(plain) - float(loss)) > 1e-4


def test_gspo_advantage_methods_run_unchanged():
    """Advantage methods act in the PPOTrainer; their loss under GSPO is GRPO's GSPO loss."""
    new, old, rollout, adv, mask = _tensors(seed=6)
    losses = []
    for method in ("grpo", "w_reinforce", "edge_grpo", "opo"):
        fn = EntropyControlPolicyLoss(policy_loss_type="gspo")
        fn.bind(build_method(method), LossConfig())
        fn.binding.context = LossCallContext(**_context(0, new, old))
        losses.append(float(fn(new, old, adv, action_mask=mask)[0]))
    theirs = float(OpenRLHFPolicyLoss(policy_loss_type="gspo")(new, old, adv, action_mask=mask)[0])
    assert losses == pytest.approx([theirs] * 4, rel=1e-5)


@pytest.mark.parametrize("method", ["clip_cov", "rand_pos_clip", "steer,clip_cov"])
def test_gspo_refuses_clip_masks_with_the_reason(method):
    from openrlhf_steer.integration.flags import EntropyControlSpec

    built = EntropyControlSpec(methods=[(name, {}) for name in method.split(",")]).build_method()
    with pytest.raises(ValueError, match=r"sequence-level ratio \(GSPO\).*shared ratio of its sequence"):
        PolicyLoss(LossConfig(), built, ratio_level="sequence")


# --------------------------------------------------------------------------------------- launcher
BASE_COMMAND = """
--actor.model_name_or_path Qwen/Qwen2.5-Math-7B --reward.remote_url /abs/math_reward.py
--data.prompt_dataset /abs/prompts.jsonl --data.input_key prompt --data.label_key answer
--vllm.num_engines 1 --rollout.n_samples_per_prompt 8 --rollout.batch_size 4 --train.batch_size 32
--train.micro_batch_size 8 --algo.advantage.estimator group_norm --algo.kl.init_coef 0
""".split()


def _command(*changes):
    """BASE_COMMAND with (flag, *values) added."""
    argv = list(BASE_COMMAND)
    for flag, *values in changes:
        argv += [flag, *values]
    return argv


def test_check_args_accepts_is_correction_and_gspo():
    from openrlhf_steer.integration import check_args
    from openrlhf_steer.integration.args import effective_loss_config, spec_from_args

    args = check_args(
        ["--entropy.method", "steer"]
        + _command(
            ("--algo.advantage.is_correction_level", "seq"),
            ("--algo.advantage.is_correction_gating", "tv"),
            ("--algo.advantage.is_correction_threshold", "0.05"),
        )
    )
    assert args.algo.advantage.is_correction_threshold == [0.0, 0.05]  # OpenRLHF's own normalisation
    args = check_args(["--entropy.method", "steer"] + _command(("--actor.policy_loss_type", "gspo")))
    assert effective_loss_config(args, spec_from_args(args).build_method()).loss_agg_mode == "seq-mean-token-mean"


def test_check_args_refuses_gspo_with_a_clip_mask_method():
    from openrlhf_steer.integration import EntropyArgsError, check_args

    with pytest.raises(EntropyArgsError, match=r"--actor\.policy_loss_type gspo cannot run --entropy\.method clip_cov"):
        check_args(["--entropy.method", "clip_cov"] + _command(("--actor.policy_loss_type", "gspo")))
