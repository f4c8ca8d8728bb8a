"""Registry, config documentation/validation, composition, controller state, estimators."""

import dataclasses
import math
import typing

import pytest
import torch
from steertest_core import LN, make_inputs, t

from openrlhf_steer.core.estimators import covariance_entropy_change, first_order_entropy_change, kl_estimate
from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.methods import (
    LossConfig,
    available_methods,
    build_method,
    compose_methods,
    describe_methods,
    get_method_class,
)

EXPECTED = {
    "grpo",
    "steer",
    "pos_adv_reweight",
    "rand_pos_clip",
    "positive_only",
    "negative_only",
    "quadrant",
    "clip_higher",
    "clip_lower",
    "clip_tighter",
    "clip_free",
    "entropy_loss",
    "adaptive_entropy",
    "clip_cov",
    "kl_cov",
    "entropy_advantage",
    "forking_tokens",
    "w_reinforce",
    "gtpo",
    "edge_grpo",
    "opo",
    "unlikeliness_reward",
    "kl_penalty",
}
SIMPLE_TYPES = {float, int, str, bool, typing.Optional[float], typing.Optional[int], typing.Optional[str]}


def test_every_contract_method_is_registered():
    assert EXPECTED <= set(available_methods())


@pytest.mark.parametrize("path", ["README.md", "docs/methods.md"])
def test_docs_method_tables_are_the_generated_one(path):
    """README and docs carry exactly `openrlhf-steer methods --markdown` (name, file, paper, hooks, summary)."""
    from pathlib import Path

    from openrlhf_steer.methods import methods_markdown_table

    text = (Path(__file__).resolve().parents[1] / path).read_text()
    start = text.index("<!-- methods table: generated")
    body = text[text.index("\n", start) + 1 : text.index("<!-- end of the generated methods table -->")]
    assert body == methods_markdown_table()
    for name in available_methods():  # every registered method, with the file it lives in
        assert f"| `{name}` | `openrlhf_steer/methods/" in body


def test_registry_scan_imports_every_method_module_and_raises_on_errors(tmp_path, monkeypatch):
    """A broken method module is an error, never a silently missing method."""
    import importlib

    import openrlhf_steer.methods as package
    from openrlhf_steer.methods import registry

    broken = tmp_path / "broken_method.py"
    broken.write_text("import a_module_that_does_not_exist\n")
    monkeypatch.setattr(package, "__path__", list(package.__path__) + [str(tmp_path)])
    monkeypatch.setattr(registry, "_LOADED", False)
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist"):
        registry.load_methods()
    monkeypatch.setattr(package, "__path__", [p for p in package.__path__ if p != str(tmp_path)])
    importlib.invalidate_caches()


def test_needs_come_from_the_class_declarations():
    """What the adapters run is derived from each class, not from a list of names."""
    needs = {name: build_method(name).needs() for name in available_methods()}
    assert needs["entropy_loss"].entropy_grad and needs["adaptive_entropy"].entropy_grad
    assert not needs["forking_tokens"].entropy_grad and needs["forking_tokens"].current_entropy
    assert needs["edge_grpo"].old_entropy and needs["gtpo"].old_entropy and needs["edge_grpo"].advantage_hooks
    assert needs["steer"].old_entropy and not needs["steer"].current_entropy  # the authors' rollout entropy
    assert build_method("steer", entropy_source="current").needs().current_entropy
    assert needs["kl_penalty"].ref_log_probs and needs["adaptive_entropy"].controller
    assert build_method("steer", stat_scope="mini_batch").needs().window_stats and not needs["steer"].window_stats
    from openrlhf_steer.methods import method_needs

    union = method_needs([build_method("steer"), build_method("entropy_loss")])
    assert union.old_entropy and union.entropy_grad and not union.ref_log_probs


@pytest.mark.parametrize("name", available_methods())
def test_configs_are_documented_simple_and_validated(name):
    cls = get_method_class(name)
    assert cls.paper and cls.__doc__
    hints = typing.get_type_hints(cls.config_cls)
    for f in dataclasses.fields(cls.config_cls):
        assert "default" in f.metadata.get("help", ""), f"{name}.{f.name} help must state the default"
        assert hints[f.name] in SIMPLE_TYPES, f"{name}.{f.name} has type {hints[f.name]}"
    build_method(name)  # defaults validate
    assert name in describe_methods([name])


@pytest.mark.parametrize(
    "name,option,value",
    [
        ("pos_adv_reweight", "schedule", "cosine"),
        ("pos_adv_reweight", "step_size", -0.1),
        ("rand_pos_clip", "clip_fraction", 1.5),
        ("quadrant", "fraction", -0.1),
        ("quadrant", "band", "mid"),
        ("clip_higher", "eps_high", -1.0),
        ("clip_lower", "eps_low", 2.0),
        ("clip_tighter", "eps_low", -0.1),
        ("entropy_loss", "coef", float("nan")),
        ("adaptive_entropy", "coef_max", -1.0),
        ("clip_cov", "cov_ub", 0.5),
        ("kl_cov", "kl_ratio", 2.0),
        ("entropy_advantage", "alpha", -1.0),
        ("forking_tokens", "top_entropy_fraction", 0.0),
        ("w_reinforce", "mode", "both"),
        ("gtpo", "level", "paragraph"),
        ("edge_grpo", "entropy_mean", "median"),
        ("unlikeliness_reward", "beta", 2.0),
        ("kl_penalty", "estimator", "k4"),
        ("steer", "omega_floor", 0.0),
    ],
)
def test_out_of_range_options_name_the_field(name, option, value):
    with pytest.raises(ValueError, match=option):
        build_method(name, **{option: value})


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown entropy-control method 'steerr'"):
        build_method("steerr")
    with pytest.raises(ValueError, match="no option"):
        build_method("steer", lambda_minimum=0.5)


def test_compose_multiplies_weights_chains_configs_and_sums_terms():
    # positive_only (weights [1, 0]) x pos_adv constant 0.5 (weights [0.5, 1]) -> [0.5, 0];
    # clip_free removes the clip; kl_penalty k1 adds 0.1 * (log p - log p_ref).
    methods = [
        build_method("positive_only"),
        build_method("pos_adv_reweight", schedule="constant", lambda_value=0.5),
        build_method("clip_free"),
        build_method("kl_penalty", coef=0.1, estimator="k1", clamp=None),
    ]
    combo = compose_methods(methods)
    inputs = make_inputs([[LN(1.5), LN(1.0)]], [[1.0, -1.0]], old_log_probs=[[0.0, 0.0]], ref_log_probs=[[0.0, 0.0]])
    loss, m = PolicyLoss(LossConfig(), combo)(inputs)
    # pg: t0 -A r w = -1.5 * 0.5 (no clip), t1 weight 0; kl: 0.1 * (ln 1.5 + 0)
    assert loss.item() == pytest.approx((-0.75 + 0.1 * math.log(1.5)) / 2)
    assert m["weights/mean"] == pytest.approx(0.25)
    assert combo.required_inputs() == ("ref_log_probs",)
    assert compose_methods([methods[0]]) is methods[0]
    with pytest.raises(ValueError, match="advantage estimator"):
        compose_methods([build_method("opo"), build_method("gtpo")])


def test_composed_controller_state_round_trip():
    def make():
        return compose_methods(
            [
                build_method("pos_adv_reweight", schedule="entropy"),
                build_method("adaptive_entropy", entropy_metric="entropy/old_mean"),
            ]
        )

    a = make()
    for h in (0.5, 0.1, 0.3):
        a.on_step_end({"entropy/old_mean": h})
    b = make()
    b.load_state_dict(a.state_dict())
    assert b.controller_values() == a.controller_values()
    a.on_step_end({"entropy/old_mean": 0.05})
    b.on_step_end({"entropy/old_mean": 0.05})
    assert b.state_dict() == a.state_dict() and "pos_adv_lambda" in a.controller_values()
    with pytest.raises(ValueError, match="method list changed"):
        compose_methods([build_method("steer"), build_method("kl_penalty")]).load_state_dict(a.state_dict())


def test_first_order_estimator_formula():
    # p = 0.8, p_old = 0.5, H = 0.7, A = -2: Omega = -2 / 0.5 * 0.8 * 0.04 * (ln 0.8 + 0.7)
    omega = first_order_entropy_change(t([[LN(0.8)]]), t([[LN(0.5)]]), t([[0.7]]), t([[-2.0]]))
    assert omega.item() == pytest.approx(-4 * 0.8 * 0.04 * (math.log(0.8) + 0.7))
    omega1 = first_order_entropy_change(t([[LN(0.8)]]), t([[LN(0.5)]]), t([[0.7]]), t([[-2.0]]), prob_power=1)
    assert omega1.item() == pytest.approx(-4 * 0.8 * 0.2 * (math.log(0.8) + 0.7))


def test_covariance_estimator_per_token_and_batch():
    # A = [1, -1, (masked 7)], log p = [-1, -3, (masked 0)]: means 0 and -2 -> cov = [1*1, -1*-1] = [1, 1]
    mask = t([[1, 1, 0]]).bool()
    cov = covariance_entropy_change(t([[-1.0, -3.0, 0.0]]), t([[1.0, -1.0, 7.0]]), mask)
    assert torch.allclose(cov, t([[1.0, 1.0, 0.0]]))
    batch = covariance_entropy_change(t([[-1.0, -3.0, 0.0]]), t([[1.0, -1.0, 7.0]]), mask, reduction="mean")
    assert batch.item() == pytest.approx(1.0)


def test_kl_estimate_pure_function():
    lp, ref = t([[LN(0.5)]]), t([[LN(0.25)]])
    assert kl_estimate(lp, ref, "k3").item() == pytest.approx(math.log(2) - 0.5)
    assert kl_estimate(lp, ref, "k1", clamp=0.1).item() == pytest.approx(0.1)


def test_omega_matches_the_first_order_entropy_change_of_a_single_logit_step():
    # Tabular softmax, one small policy-gradient step on the sampled token's own logit only:
    #   dz_y = eta * d(A r)/dz_y = eta * A (1 - p_y)   (r = 1), and dH/dz_y = -p_y (log p_y + H), so
    #   Delta H ~= -eta * A * p_y (1 - p_y) (log p_y + H) = -eta * p_y * Omega(prob_power=1).
    # STEER's Omega (as coded and in the paper) has no factor p_y and uses (1 - p)^2 by default:
    # it ranks tokens by (1 - p)^k (log p + H) A r. The check pins down that structure exactly.
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, generator=g, dtype=torch.float64) * 1.5
    adv, eta = 1.3, 1e-6

    def entropy(logits):
        q = torch.softmax(logits, -1)
        return float(-(q * q.log()).sum())

    p = torch.softmax(z, -1)
    for y in range(7):
        z_new = z.clone()
        z_new[y] += eta * adv * (1 - p[y])
        actual = entropy(z_new) - entropy(z)
        lp = p[y].log().view(1, 1)
        omega1 = first_order_entropy_change(lp, lp, t([[entropy(z)]]), t([[adv]]), prob_power=1).item()
        omega2 = first_order_entropy_change(lp, lp, t([[entropy(z)]]), t([[adv]])).item()
        assert actual == pytest.approx(-eta * p[y].item() * omega1, rel=1e-4)
        assert omega2 == pytest.approx(omega1 * (1 - p[y].item()))


@pytest.mark.parametrize("name", available_methods())
def test_every_method_gives_finite_loss_gradient_and_metrics_on_random_batches(name):
    from openrlhf_steer.core.advantages import compute_advantages
    from openrlhf_steer.methods import GroupInputs

    method = build_method(name)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        n, width = 6, 9
        mask = torch.rand(n, width, generator=g) > 0.25
        mask[:, 0] = True  # every response has a token (left-aligned)
        mask = torch.cumprod(mask.long(), dim=1).bool()
        old_lp = -torch.rand(n, width, generator=g, dtype=torch.float64) * 4 - 1e-3
        entropy = torch.rand(n, width, generator=g, dtype=torch.float64) * 3
        rewards = (torch.rand(n, generator=g) > 0.5).float()
        group = GroupInputs(
            rewards=rewards,
            group_ids=torch.tensor([0, 0, 0, 1, 1, 1]),
            response_mask=mask,
            old_log_probs=old_lp.float(),
            entropy=entropy.float(),
        )
        adv = compute_advantages(group, method).double()
        assert torch.isfinite(adv).all() and (adv[~mask] == 0).all()
        lp = (old_lp + 0.1 * torch.randn(n, width, generator=g, dtype=torch.float64)).clamp(max=-1e-4)
        inputs = make_inputs(
            lp.tolist(),
            adv.tolist(),
            mask=mask.double().tolist(),
            old_log_probs=old_lp.tolist(),
            entropy=entropy.clone().requires_grad_(),
            old_entropy=entropy,
            ref_log_probs=old_lp - 0.05,
            total_steps=10,
            step=6,
            epoch=2,
            total_epochs=3,
            generator=torch.Generator().manual_seed(seed),
        )
        loss, metrics = PolicyLoss(LossConfig(dual_clip=3.0), method)(inputs)
        loss.backward()
        assert math.isfinite(loss.item()) and torch.isfinite(inputs.log_probs.grad).all()
        assert all(math.isfinite(v) for v in metrics.values()), metrics
        method.on_step_end(metrics)  # controllers accept the loss's own metric names


def test_hooks_per_method_match_the_documented_table():
    from openrlhf_steer.methods import method_hooks

    expected = {
        "grpo": [],
        "steer": ["b:weights"],
        "kl_cov": ["c:clip-range", "d:extra-terms"],
        "clip_cov": ["c:clip-mask"],
        "adaptive_entropy": ["d:extra-terms", "e:controller"],
        "pos_adv_reweight": ["b:weights", "e:controller"],
        "unlikeliness_reward": ["a:rewards"],
        "gtpo": ["a:advantages"],
        "entropy_advantage": ["a:token-advantages"],
    }
    for name, hooks in expected.items():
        assert method_hooks(get_method_class(name)) == hooks, name
    assert "hooks: b:weights" in describe_methods(["steer"])
