"""Entropy targets (openrlhf_steer.control): schedules, controllers x levers on hand-computed sequences,
anti-windup, bounds from the methods' validation, the bang-bang rule moved out of the methods unchanged,
and save/resume mid-sequence."""

import json
import math

import pytest
import torch

from openrlhf_steer.control import CONTROLLERS, LEVERS, EmaSmoother, attach_target, bang_bang_step, get_lever
from openrlhf_steer.control.controllers import Bounds, ProportionalIntegral
from openrlhf_steer.control.targets import cosine, parse_knots, piecewise_linear
from openrlhf_steer.core.types import LossConfig, LossInputs
from openrlhf_steer.methods import build_method, compose_methods

TINY = 5e-324  # the smallest positive double: STEER's open bound 0 < lambda_min nudged inside

# Constant target 0.2 and the measured entropies: errors target - H = [-0.3, -0.2, 0.1, 0.1, -0.1, 0.0]
ENTROPIES = [0.5, 0.4, 0.1, 0.1, 0.3, 0.2]

# lever -> (method, its options, target limits, how the test reads the live value independently of the lever)
LEVER_SETUPS = {
    "pos_adv.lambda": ("pos_adv_reweight", {"schedule": "target", "lambda_init": 0.5}, {}, lambda m: m.lam),
    "steer.lambda_min": ("steer", {}, {}, lambda m: m.config.lambda_min),
    "clip.eps_low": ("clip_lower", {}, {}, lambda m: m.loss_config(LossConfig()).eps_low),
    "pos_adv.negative_weight": (
        "pos_adv_reweight",
        {"schedule": "constant"},
        {"lever_max": 2.0},
        lambda m: m.config.negative_weight,
    ),
    "entropy_loss.coef": ("entropy_loss", {}, {"lever_min": 0.0, "lever_max": 0.01}, lambda m: m.config.coef),
    "clip.eps_high": ("clip_higher", {}, {"lever_max": 0.4}, lambda m: m.loss_config(LossConfig()).eps_high),
}

# (lever, controller) -> (gains, expected lever value after each update), computed by hand in the comments.
# Levers that lower the entropy (direction -1) see drives d = [0.3, 0.2, -0.1, -0.1, 0.1, 0.0]; those that
# raise it see d = [-0.3, -0.2, 0.1, 0.1, -0.1, 0.0]. d > 0 moves the lever up; d = 0 makes bang_bang fall.
EXPECTED = {
    # lambda: [0, 1], starts 0.5
    ("pos_adv.lambda", "bang_bang"): ({"step_size": 0.3}, [0.8, 1.0, 0.7, 0.4, 0.7, 0.4]),  # 1.1 -> 1 (bound)
    # PI: u = 0.5 + d + I. k1: raw 0.5+0.3+0.3 = 1.1 > 1, d > 0: I stays 0, u = 0.8; k2: I = 0.2, u = 0.9;
    # k3: I = 0.1, u = 0.5; k4: I = 0, u = 0.4; k5: I = 0.1, u = 0.7; k6: I = 0.1, u = 0.6
    ("pos_adv.lambda", "pi"): ({"kp": 1.0, "ki": 1.0}, [0.8, 0.9, 0.5, 0.4, 0.7, 0.6]),
    ("pos_adv.lambda", "hysteresis"): ({"band": 0.05}, [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]),
    # lambda_min: (0, min(1, lambda_max = 1)], starts 0.8 (STEER's default)
    ("steer.lambda_min", "bang_bang"): ({"step_size": 0.15}, [0.95, 1.0, 0.85, 0.7, 0.85, 0.7]),
    # u = 0.8 + d + I. k1: raw 1.4 wind, u = clip(1.1) = 1; k2: raw 1.2 wind, u = 1; k3: I = -0.1, u = 0.6;
    # k4: I = -0.2, u = 0.5; k5: I = -0.1, u = 0.8; k6: u = 0.7
    ("steer.lambda_min", "pi"): ({"kp": 1.0, "ki": 1.0}, [1.0, 1.0, 0.6, 0.5, 0.8, 0.7]),
    ("steer.lambda_min", "hysteresis"): ({"band": 0.05}, [1.0, 1.0, TINY, TINY, 1.0, 1.0]),
    # eps_low: [0, 1], starts 0.28 (Clip-Lower)
    ("clip.eps_low", "bang_bang"): ({"step_size": 0.4}, [0.68, 1.0, 0.6, 0.2, 0.6, 0.2]),
    # u = 0.28 + 2d + I. k1: raw 1.18 wind, u = 0.88; k2: I = 0.2, u = 0.88; k3: I = 0.1, u = 0.18;
    # k4: I = 0, u = 0.08; k5: I = 0.1, u = 0.58; k6: u = 0.38
    ("clip.eps_low", "pi"): ({"kp": 2.0, "ki": 1.0}, [0.88, 0.88, 0.18, 0.08, 0.58, 0.38]),
    ("clip.eps_low", "hysteresis"): ({"band": 0.05}, [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]),
    # negative weight: [0, 2] (validation >= 0, lever_max 2), starts 1
    ("pos_adv.negative_weight", "bang_bang"): ({"step_size": 0.6}, [0.4, 0.0, 0.6, 1.2, 0.6, 0.0]),
    # u = 1 + 2d + 2I. k1: raw -0.2 < 0, d < 0: I stays 0, u = 0.4; k2: I = -0.2, u = 0.2; k3: I = -0.1,
    # u = 1.0; k4: I = 0, u = 1.2; k5: I = -0.1, u = 0.6; k6: u = 0.8
    ("pos_adv.negative_weight", "pi"): ({"kp": 2.0, "ki": 2.0}, [0.4, 0.2, 1.0, 1.2, 0.6, 0.8]),
    ("pos_adv.negative_weight", "hysteresis"): ({"band": 0.05}, [0.0, 0.0, 2.0, 2.0, 0.0, 0.0]),
    # entropy coefficient: [0, 0.01] (limits; validation accepts any), starts 0.001
    ("entropy_loss.coef", "bang_bang"): ({"step_size": 0.004}, [0.0, 0.0, 0.004, 0.008, 0.004, 0.0]),
    # u = 0.001 + 0.03 d + 0.01 I. k1, k2: raw < 0 with d < 0, I stays 0, u = 0; k3: I = 0.1, u = 0.005;
    # k4: I = 0.2, u = 0.006; k5: raw 0.001 - 0.003 + 0.001 < 0, d < 0: I stays 0.2, u = clip(0) = 0;
    # k6: I = 0.2, u = 0.003 (without anti-windup I would be 0.1 and u 0.002)
    ("entropy_loss.coef", "pi"): ({"kp": 0.03, "ki": 0.01}, [0.0, 0.0, 0.005, 0.006, 0.0, 0.003]),
    ("entropy_loss.coef", "hysteresis"): ({"band": 0.05}, [0.0, 0.0, 0.01, 0.01, 0.0, 0.0]),
    # eps_high: [0, 0.4] (validation >= 0, lever_max 0.4), starts 0.28 (DAPO)
    ("clip.eps_high", "bang_bang"): ({"step_size": 0.2}, [0.08, 0.0, 0.2, 0.4, 0.2, 0.0]),
    # u = 0.28 + 0.5 d + 0.5 I. k1: raw -0.02 wind, u = 0.13; k2: I = -0.2, u = 0.08; k3: I = -0.1, u = 0.28;
    # k4: I = 0, u = 0.33; k5: I = -0.1, u = 0.18; k6: u = 0.23
    ("clip.eps_high", "pi"): ({"kp": 0.5, "ki": 0.5}, [0.13, 0.08, 0.28, 0.33, 0.18, 0.23]),
    ("clip.eps_high", "hysteresis"): ({"band": 0.05}, [0.0, 0.0, 0.4, 0.4, 0.0, 0.0]),
}


def targeted(lever, controller, gains, **extra):
    method_name, options, limits, _ = LEVER_SETUPS[lever]
    target = {"lever": lever, "controller": controller, "start": 0.2, **limits, **gains, **extra}
    return attach_target(build_method(method_name, options), target)


def test_every_controller_and_lever_is_covered():
    assert set(EXPECTED) == {(lever, c) for lever in LEVERS for c in CONTROLLERS}
    assert set(LEVER_SETUPS) == set(LEVERS)


@pytest.mark.parametrize("lever,controller", sorted(EXPECTED))
def test_controller_moves_lever_step_by_step(lever, controller):
    gains, expected = EXPECTED[(lever, controller)]
    method = targeted(lever, controller, gains)
    read = LEVER_SETUPS[lever][3]
    seen, logged = [], []
    for h in ENTROPIES:
        method.on_boundary("optimizer_step", {"entropy/old_mean": h})  # not the target's boundary
        method.on_boundary("rollout_step", {"entropy/old_mean": h})
        seen.append(read(method.inner))
        logged.append(method.controller_values())
    assert seen == pytest.approx(expected, abs=1e-12)
    bounds = method.bounds
    assert all(bounds.low <= v <= bounds.high for v in seen)
    assert [v["target/lever"] for v in logged] == pytest.approx(expected, abs=1e-12)
    assert [v["target/measured"] for v in logged] == ENTROPIES
    assert [v["target/error"] for v in logged] == pytest.approx([-0.3, -0.2, 0.1, 0.1, -0.1, 0.0], abs=1e-12)
    assert all(v["target/target"] == 0.2 for v in logged)


def test_pi_anti_windup_recovers_at_once_after_saturation():
    # Bounds [0, 1], u0 = 0.5, kp = 0, ki = 0.5: four drives of +1 saturate at 1. With conditional integration
    # I = 1 after the first (0.5 + 0.5 = 1 is not beyond the bound), then stays 1 (raw 1.5 > 1). One drive of
    # -1 gives I = 0 and u = 0.5 at once; a wound-up integral (I = 4) would still give u = clip(0.5 + 1.5) = 1.
    pi = ProportionalIntegral(Bounds(0.0, 1.0), 0.5, kp=0.0, ki=0.5)
    values = [pi.update(1.0) for _ in range(4)]
    assert values == [1.0, 1.0, 1.0, 1.0] and pi.integral == 1.0
    assert pi.update(-1.0) == 0.5 and pi.integral == 0.0


def test_pi_output_limits_and_gain_signs():
    pi = ProportionalIntegral(Bounds(0.2, 0.6), 0.4, kp=10.0, ki=0.0)
    assert [pi.update(d) for d in (1.0, -1.0, 0.01)] == pytest.approx([0.6, 0.2, 0.5])
    with pytest.raises(ValueError, match="must be >= 0"):
        ProportionalIntegral(Bounds(0, 1), 0.5, kp=-1.0, ki=0.0)


# -- the bang-bang rule moved out of the methods: unchanged behaviour -----------------------------------
def _old_pos_adv(current, entropy, target, step):  # advantage_sign.entropy_guided_lambda before the move
    new = current + step if entropy > target else current - step
    return min(1.0, max(0.0, new))


def _old_skywork(coef, entropy, target, delta, lo, hi):  # entropy_regularization before the move
    new = coef + delta if entropy < target else coef - delta
    return min(hi, max(lo, new)), entropy < target


def test_pos_adv_entropy_schedule_unchanged_on_hand_sequence():
    # lambda_0 = 0.96, step 0.05, delta = 0.2: H > 0.2 rises, otherwise (ties included) falls, clipped to [0, 1]
    method = build_method("pos_adv_reweight", {"schedule": "entropy", "lambda_init": 0.96})
    lams = []
    for h in [0.3, 0.25, 0.2, 0.1, 0.1, 0.5]:
        method.on_boundary("rollout_step", {"entropy/old_mean": h})
        lams.append(method.lam)
    assert lams == pytest.approx([1.0, 1.0, 0.95, 0.90, 0.85, 0.90], abs=1e-12)


def test_adaptive_entropy_unchanged_on_hand_sequence():
    # c_0 = 0, delta 1e-4, c_max 2e-4, H* = 0.2: H < H* rises (and enables), otherwise falls (and disables)
    method = build_method("adaptive_entropy", {"coef_delta": 1e-4, "coef_max": 2e-4})
    seen = []
    for h in [0.1, 0.1, 0.1, 0.3, 0.2, 0.2]:
        method.on_boundary("rollout_step", {"entropy/sampled_nll": h})
        seen.append((method.coef, method.enabled))
    assert [c for c, _ in seen] == pytest.approx([1e-4, 2e-4, 2e-4, 1e-4, 0.0, 0.0], abs=1e-18)
    assert [e for _, e in seen] == [True, True, True, False, False, False]


def test_shared_rule_equals_the_old_formulas_bit_for_bit():
    from openrlhf_steer.methods.advantage_sign import entropy_guided_lambda
    from openrlhf_steer.methods.entropy_regularization import adaptive_entropy_update

    values = [0.0, 1e-300, 0.05, 0.1999999999999, 0.2, 0.2000000000001, 0.35, 1.0, 3.0, math.inf]
    for current in (0.0, 0.03, 0.5, 0.98, 1.0):
        for h in values:
            for target in (0.0, 0.2, 1.0):
                assert entropy_guided_lambda(current, h, target, 0.05) == _old_pos_adv(current, h, target, 0.05)
                assert adaptive_entropy_update(current * 1e-2, h, target, 1e-4, 0.0, 5e-3) == _old_skywork(
                    current * 1e-2, h, target, 1e-4, 0.0, 5e-3
                )
    assert bang_bang_step(0.5, 0.0, 0.1, 0.0, 1.0) == 0.4  # zero drive falls


# -- levers: bounds from the methods' validation --------------------------------------------------------
# lever -> (method, field validated, low, high) as the config's validate() accepts them
VALIDATED_RANGES = {
    "pos_adv.lambda": ("pos_adv_reweight", "lambda_init", 0.0, 1.0),
    "pos_adv.negative_weight": ("pos_adv_reweight", "negative_weight", 0.0, math.inf),
    "entropy_loss.coef": ("entropy_loss", "coef", -math.inf, math.inf),
    "steer.lambda_min": ("steer", "lambda_min", TINY, 1.0),
    "clip.eps_low": ("clip_lower", "eps_low", 0.0, 1.0),
    "clip.eps_high": ("clip_higher", "eps_high", 0.0, math.inf),
}


@pytest.mark.parametrize("lever_name", sorted(LEVERS))
def test_lever_bounds_are_the_methods_validation(lever_name):
    method_name, field, low, high = VALIDATED_RANGES[lever_name]
    method = build_method(method_name, {"schedule": "target"} if method_name == "pos_adv_reweight" else {})
    bounds = get_lever(lever_name).bounds(method)
    assert (bounds.low, bounds.high) == (low, high)
    config_cls = type(method.config)
    for edge, outside in ((low, low - 1e-9 if low != TINY else 0.0), (high, high + 1e-9)):
        if math.isfinite(edge):
            config_cls(**{field: edge}).validate()
            with pytest.raises(ValueError, match=field):
                config_cls(**{field: outside}).validate()


def test_steer_lambda_min_upper_bound_follows_lambda_max():
    method = build_method("steer", {"lambda_max": 0.9})
    assert get_lever("steer.lambda_min").bounds(method).high == 0.9


def test_lever_errors_name_the_fix():
    with pytest.raises(ValueError, match="--entropy.target.lever_min and --entropy.target.lever_max"):
        attach_target(build_method("entropy_loss"), {"lever": "entropy_loss.coef"})
    with pytest.raises(ValueError, match="set --entropy.target.lever_max$"):
        attach_target(build_method("clip_higher"), {"lever": "clip.eps_high"})
    with pytest.raises(ValueError, match="schedule target"):
        attach_target(build_method("pos_adv_reweight"), {"lever": "pos_adv.lambda"})
    with pytest.raises(ValueError, match="add one of them to --entropy.method"):
        attach_target(build_method("grpo"), {"lever": "clip.eps_low"})
    with pytest.raises(ValueError, match="choose limits inside it"):
        attach_target(build_method("clip_lower"), {"lever": "clip.eps_low", "lever_max": 1.5})
    with pytest.raises(ValueError, match="lever is required"):
        attach_target(build_method("clip_lower"), {"controller": "pi"})
    with pytest.raises(ValueError, match="total_steps"):
        attach_target(build_method("clip_lower"), {"lever": "clip.eps_low", "schedule": "cosine", "end": 0.1})
    with pytest.raises(ValueError, match="controller"):
        attach_target(build_method("clip_lower"), {"lever": "clip.eps_low", "controller": "pid"})


def test_lever_in_a_composed_method_and_loss_reads_it():
    method = attach_target(
        compose_methods([build_method("steer"), build_method("clip_higher")]),
        {"lever": "clip.eps_high", "controller": "bang_bang", "step_size": 0.1, "lever_max": 0.5},
    )
    method.on_boundary("rollout_step", {"entropy/old_mean": 0.1})  # below target 0.2: eps_high rises
    assert method.loss_config(LossConfig()).eps_high == pytest.approx(0.38)
    assert method.needs().old_entropy and method.needs().controller


def test_negative_weight_enters_the_token_weights():
    method = build_method("pos_adv_reweight", {"schedule": "constant", "lambda_value": 0.5, "negative_weight": 2.0})
    adv = torch.tensor([[1.0, -1.0, 0.0]])
    inputs = LossInputs(
        log_probs=torch.zeros(1, 3), old_log_probs=torch.zeros(1, 3), advantages=adv, action_mask=torch.ones(1, 3)
    )
    assert method.token_weights(inputs).tolist() == [[0.5, 2.0, 1.0]]


# -- targets ------------------------------------------------------------------------------------------
def test_schedules_by_hand():
    assert [cosine(0.6, 0.2, p) for p in (0.0, 0.5, 1.0)] == pytest.approx([0.6, 0.4, 0.2])
    knots = parse_knots("0:0.6,0.5:0.4,1:0.2")
    assert [piecewise_linear(knots, p) for p in (0.0, 0.25, 0.75, 1.0)] == pytest.approx([0.6, 0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="increase"):
        parse_knots("0:0.6,0.5:0.4,0.4:0.2")


def test_schedule_follows_rollout_progress_and_ema():
    # linear 0.6 -> 0.2 over 4 rollout steps: targets 0.6, 0.5, 0.4, 0.3, 0.2, 0.2 (held after the end)
    method = targeted("clip.eps_low", "pi", {}, schedule="linear", start=0.6, end=0.2, total_steps=4, ema=0.5)
    targets, measured = [], []
    for h in [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]:
        method.on_boundary("rollout_step", {"entropy/old_mean": h})
        targets.append(method.controller_values()["target/target"])
        measured.append(method.controller_values()["target/measured"])
    assert targets == pytest.approx([0.6, 0.5, 0.4, 0.3, 0.2, 0.2])
    assert measured == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125])
    smoother = EmaSmoother(0.0)
    assert [smoother.update(h) for h in (0.3, 0.1)] == [0.3, 0.1]


def test_missing_metric_names_the_flag():
    method = targeted("clip.eps_low", "pi", {})
    with pytest.raises(ValueError, match="--entropy.target.metric"):
        method.on_boundary("rollout_step", {"entropy/current_mean": 0.3})


# -- save and resume ----------------------------------------------------------------------------------
@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_resume_mid_sequence_continues_exactly(controller):
    extra = dict(schedule="cosine", start=0.6, end=0.2, total_steps=6, ema=0.3)
    gains = {"step_size": 0.05, "kp": 1.0, "ki": 0.5, "band": 0.05}
    entropies = [0.7, 0.5, 0.45, 0.2, 0.3, 0.25, 0.1, 0.15]

    def run(method, hs):
        out = []
        for h in hs:
            method.on_boundary("rollout_step", {"entropy/old_mean": h})
            out.append((method.inner.config.lambda_min, dict(method.controller_values())))
        return out

    whole = run(targeted("steer.lambda_min", controller, gains, **extra), entropies)
    first = targeted("steer.lambda_min", controller, gains, **extra)
    head = run(first, entropies[:3])
    saved = json.loads(json.dumps(first.state_dict()))  # what a checkpoint stores survives serialisation
    fresh = targeted("steer.lambda_min", controller, gains, **extra)
    fresh.load_state_dict(saved)
    assert fresh.inner.config.lambda_min == first.inner.config.lambda_min  # config-held lever restored
    tail = run(fresh, entropies[3:])
    assert head + tail == whole  # exact, not approximate


def test_resume_refuses_a_different_target():
    first = targeted("clip.eps_low", "pi", {})
    other = targeted("clip.eps_low", "bang_bang", {})
    with pytest.raises(ValueError, match="resume with the same flags"):
        other.load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="no entropy-target state"):
        first.load_state_dict({})


def test_readme_target_table_is_the_generated_one():
    from pathlib import Path

    from openrlhf_steer.control.describe import target_markdown_table

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("<!-- target table: generated")
    body = text[text.index("\n", start) + 1 : text.index("<!-- end of the generated target table -->")]
    assert body == target_markdown_table()
    for name in sorted(CONTROLLERS) + sorted(LEVERS):
        assert f"| `{name}` |" in body


def test_cli_methods_lists_the_target_options(capsys):
    from openrlhf_steer.apps.cli import _methods

    assert _methods(["target"]) == 0
    out = capsys.readouterr().out
    assert "--entropy.target.controller (default 'pi')" in out and "arXiv 2511.15248" in out
    assert "pos_adv.lambda (pos_adv_reweight): lowers" in out


def test_measured_entropy_is_the_data_parallel_token_weighted_mean():
    """Through the step runtime every adapter uses: this rank has 10 tokens at entropy 1.0, the other rank
    (its window sums, as the all-reduce adds them) 30 tokens at 4.0: the target measures
    (10 * 1.0 + 30 * 4.0) / 40 = 3.25 at the rollout-step boundary, not this rank's 1.0."""
    from openrlhf_steer.core.metrics import LossMetrics
    from openrlhf_steer.runtime.step import StepRuntime

    other_rank = {"_tokens": 30.0, "_loss_units": 30.0, "entropy/old_mean": 120.0, "tokens/valid": 30.0}

    def all_reduce(sums, maxima, minima):
        return {k: v + other_rank.get(k, 0.0) for k, v in sums.items()}, maxima, minima

    method = targeted("clip.eps_low", "bang_bang", {"step_size": 0.1})
    runtime = StepRuntime(method, seed=0)
    runtime.record(LossMetrics({"entropy/old_mean": 1.0, "tokens/valid": 10.0}), 10.0, loss_denominator=10.0)
    runtime.end_optimizer_step(data_parallel=all_reduce)
    assert method.controller_values()["target/measured"] != method.controller_values()["target/measured"]  # NaN
    assert method.inner.config.eps_low == 0.28  # the optimizer-step boundary does not move the target's lever
    runtime.end_rollout_step()
    assert method.controller_values()["target/measured"] == pytest.approx(3.25)
    assert method.inner.config.eps_low == pytest.approx(0.38)  # H 3.25 > target 0.2, eps_low lowers H: up
