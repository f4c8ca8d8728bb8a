"""avg@n / pass@k / standard errors against direct formulas computed here."""

import math

import pytest

from openrlhf_steer_eval.metrics import correctness_metrics, default_ks, disagreements, mean_and_stderr, pass_at_k


def comb_pass_at_k(n, c, k):
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_pass_at_k_known_value():
    # (n=32, c=5, k=8) -> 0.78893 (research notes eval.md §4, checked against math.comb)
    assert pass_at_k(32, 5, 8) == pytest.approx(0.78893, abs=5e-6)


@pytest.mark.parametrize("n", [1, 2, 5, 16, 32, 64])
def test_pass_at_k_matches_binomial_formula_on_grid(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(comb_pass_at_k(n, c, k), rel=1e-12, abs=1e-12)


def test_pass_at_1_is_fraction_correct_and_edge_cases():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(4, 5, 1)


def test_correctness_metrics_hand_computed():
    # three problems, n=4: c = 2, 0, 4
    correct = [[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]]
    metrics, stderr = correctness_metrics("aime24", "math_verify", correct, ks=[1, 2, 8])
    per = [0.5, 0.0, 1.0]
    mean = sum(per) / 3
    se = math.sqrt(sum((p - mean) ** 2 for p in per) / 2 / 3)
    assert metrics["aime24/math_verify/avg@4"] == pytest.approx(mean)
    assert stderr["aime24/math_verify/avg@4"] == pytest.approx(se)
    p2 = [1 - math.comb(2, 2) / math.comb(4, 2), 0.0, 1.0]  # 5/6, 0, 1
    assert metrics["aime24/math_verify/pass@k:k=2&n=4"] == pytest.approx(sum(p2) / 3)
    m2 = sum(p2) / 3
    assert stderr["aime24/math_verify/pass@k:k=2&n=4"] == pytest.approx(
        math.sqrt(sum((p - m2) ** 2 for p in p2) / 2 / 3)
    )
    assert metrics["aime24/math_verify/pass@k:k=1&n=4"] == pytest.approx(mean)
    assert "aime24/math_verify/pass@k:k=8&n=4" not in metrics  # k > n skipped


def test_default_ks_and_uniform_n_required():
    assert default_ks(32) == [1, 2, 4, 8, 16, 32]
    assert default_ks(6) == [1, 2, 4, 6]
    assert default_ks(1) == [1]
    with pytest.raises(ValueError, match="problem #1 has 3 responses"):
        correctness_metrics("b", "g", [[1, 0], [1, 1, 0]])


def test_mean_and_stderr_single_problem():
    assert mean_and_stderr([0.25]) == (0.25, 0.0)


def test_disagreements_counts_and_ids():
    d = disagreements(["a", "b", "c"], [[1, 0], [1, 1], [0, 0]], [[1, 1], [0, 1], [0, 0]])
    assert d["count"] == 2 and d["samples"] == 6
    assert d["first_only"] == 1 and d["second_only"] == 1
    assert d["problem_ids"] == ["a", "b"]
    assert d["samples_differing"] == [{"id": "a", "sample": 1}, {"id": "b", "sample": 0}]
