"""The entropy-pass benchmark script runs end to end at a tiny size (not a timing test)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "entropy_pass.py"


@pytest.mark.slow
def test_entropy_pass_script_writes_results_and_resumes(tmp_path):
    args = [
        sys.executable,
        str(SCRIPT),
        "--vocab",
        "300",
        "--tokens",
        "40",
        "--chunk-rows",
        "8",
        "--repeats",
        "1",
        "--output-dir",
        str(tmp_path),
    ]
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=300)
    summary = json.loads((tmp_path / "entropy_pass.json").read_text())
    assert set(summary["results"]) == {"naive", "chunked_fused", "chunked_logprob", "interleaved_timing"}
    assert summary["checks"]["time_ratio_fused_over_logprob"]["value"] > 0
    agreement = summary["checks"]["agreement"]
    assert agreement["mean_log_prob_abs_diff"] < 1e-4 and agreement["mean_entropy_abs_diff"] < 1e-3
    assert "memory_ratio_naive_over_chunked" in summary["checks"] and (tmp_path / "entropy_pass.md").exists()
    # An interrupted run resumes: a partial file with the same config is reused, not recomputed.
    partial = {"config": summary["config"], "results": {"naive": summary["results"]["naive"]}}
    (tmp_path / "entropy_pass.partial.json").write_text(json.dumps(partial))
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=300).stdout
    assert "resuming" in out and not (tmp_path / "entropy_pass.partial.json").exists()
