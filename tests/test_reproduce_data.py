"""DAPO-Math-17k loader, prompt template, dedup, OpenRLHF jsonl writer, diversity subsets."""

import json

import numpy as np
import pytest

from openrlhf_steer.data import (
    DAPO_PREFIX,
    DAPO_SUFFIX,
    MathPrompt,
    deduplicate,
    format_dapo_prompt,
    hashed_tfidf,
    kmeans,
    kmeans_subset,
    load_dapo_math,
    make_subset,
    random_subset,
    strip_dapo_template,
    write_openrlhf_jsonl,
)

# The template as published in DAPO-Math-17k's user messages (written out here, independently of the module).
PUBLISHED = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\nWhat is 2+3?\n\n"
    'Remember to put your answer on its own line after "Answer:".'
)


def hf_row(problem, answer, index):
    return {
        "data_source": "math_dapo",
        "prompt": [{"role": "user", "content": format_dapo_prompt(problem)}],
        "ability": "MATH",
        "reward_model": {"ground_truth": answer, "style": "rule-lighteval/MATH_v2"},
        "extra_info": {"index": index},
    }


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_template_matches_published_text_and_round_trips():
    assert format_dapo_prompt("What is 2+3?") == PUBLISHED
    assert strip_dapo_template(PUBLISHED) == "What is 2+3?"
    assert format_dapo_prompt(PUBLISHED) == PUBLISHED  # idempotent on templated text
    assert MathPrompt("What is 2+3?", "5").prompt == PUBLISHED


def test_load_jsonl_in_hub_format_deduplicates_like_the_hf_file(tmp_path):
    # the HF file repeats each problem many times; whitespace differences count as the same problem
    rows = [
        hf_row("Find x if x+1=3.", "2", "a"),
        hf_row("Compute 7*6.", "42", "b"),
        hf_row("Find x if x+1=3.", "2", "a"),
        hf_row("Find x  if x+1=3. ", "2", "a2"),
        hf_row("Compute 7*6.", "41", "b2"),
    ]
    path = write_jsonl(tmp_path / "dapo.jsonl", rows)
    records, stats = load_dapo_math(str(path))
    assert [r.problem for r in records] == ["Find x if x+1=3.", "Compute 7*6."]
    assert [r.answer for r in records] == ["2", "42"]  # first occurrence kept
    assert [r.source_index for r in records] == ["a", "b"]
    assert stats == {"rows_read": 5, "unique": 2, "duplicates_dropped": 3, "answer_conflicts": 1}


def test_load_parquet_and_plain_fields(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([hf_row("Compute 1+1.", "2", "i0"), hf_row("Compute 2+2.", "4", "i1")])
    pq.write_table(table, tmp_path / "d.parquet")
    records, stats = load_dapo_math(str(tmp_path / "d.parquet"))
    assert [(r.problem, r.answer, r.source_index) for r in records] == [
        ("Compute 1+1.", "2", "i0"),
        ("Compute 2+2.", "4", "i1"),
    ]
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"problem": "Add 3 and 4.", "answer": 7}])
    records, _ = load_dapo_math(str(plain))
    assert records[0].problem == "Add 3 and 4." and records[0].answer == "7"


def test_bad_rows_name_the_field(tmp_path):
    no_answer = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "x"}])
    with pytest.raises(ValueError, match="reward_model.ground_truth"):
        load_dapo_math(str(no_answer))
    no_problem = write_jsonl(tmp_path / "b.jsonl", [{"answer": "1"}])
    with pytest.raises(ValueError, match="'prompt'"):
        load_dapo_math(str(no_problem))
    with pytest.raises(FileNotFoundError, match="neither an existing file"):
        load_dapo_math(str(tmp_path / "missing.jsonl"))
    broken = tmp_path / "c.jsonl"
    broken.write_text('{"prompt": "x", "answer": 1}\n{not json\n')
    with pytest.raises(ValueError, match="c.jsonl:2"):
        load_dapo_math(str(broken))


def test_openrlhf_jsonl_rows_and_manifest(tmp_path):
    recs = [MathPrompt("What is 2+3?", "5", "k1")]
    info = write_openrlhf_jsonl(recs, tmp_path / "out.jsonl", manifest={"request": {"x": 1}})
    row = json.loads((tmp_path / "out.jsonl").read_text())
    assert row == {"prompt": [{"role": "user", "content": PUBLISHED}], "label": "5", "source_index": "k1"}
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest["rows"] == 1 and manifest["request"] == {"x": 1} and manifest["sha256"] == info["sha256"]
    assert manifest["template"] == {"prefix": DAPO_PREFIX, "suffix": DAPO_SUFFIX}
    with pytest.raises(ValueError, match="no training records"):
        write_openrlhf_jsonl([], tmp_path / "empty.jsonl")


def test_deduplicate_counts_directly():
    recs = [MathPrompt("a", "1"), MathPrompt("a", "1"), MathPrompt("b", "2")]
    kept, stats = deduplicate(recs)
    assert (
        [r.problem for r in kept] == ["a", "b"] and stats["duplicates_dropped"] == 1 and stats["answer_conflicts"] == 0
    )


# --------------------------------------------------------------------------------------------------
# subsets
# --------------------------------------------------------------------------------------------------
def test_random_subset_is_seeded_and_without_replacement():
    items = list(range(100))
    a = random_subset(items, 10, seed=3)
    assert a == random_subset(items, 10, seed=3)
    assert a != random_subset(items, 10, seed=4)
    assert len(set(a)) == 10
    # the same draw numpy's generator gives for that seed
    assert a == [int(i) for i in np.random.default_rng(3).choice(100, size=10, replace=False)]
    with pytest.raises(ValueError, match="subset size=101"):
        random_subset(items, 101)


def test_hashed_tfidf_rows_are_unit_norm_and_share_tokens():
    x = hashed_tfidf(["solve for x", "solve for x", "integral of sine"], dim=64)
    assert x.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(x[0], x[1])
    assert float(x[0] @ x[2]) < float(x[0] @ x[1])  # different text, less similar (no shared grams: ~0)


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.1 * rng.standard_normal((20, 2)) for c in centers]).astype(np.float32)
    labels, cents = kmeans(x, 3, seed=1)
    for block in range(3):  # every block of 20 points in one cluster, three different clusters
        assert len(set(labels[block * 20 : (block + 1) * 20])) == 1
    assert len(set(labels)) == 3
    np.testing.assert_allclose(
        np.sort(cents[:, 0]), np.sort([x[:20, 0].mean(), x[20:40, 0].mean(), x[40:, 0].mean()]), atol=1e-5
    )


def test_kmeans_subset_takes_centroid_nearest_round_robin():
    # two obvious topics; the prototype of each cluster is its most typical (repeated) problem
    topic_a = ["solve the quadratic equation x^2 - 5x + 6 = 0"] * 3 + [
        "solve the quadratic equation x^2 + x - 2 = 0 quickly"
    ]
    topic_b = ["find the area of the triangle with sides 3 4 5"] * 3 + ["find the area of the circle radius 2 please"]
    items = topic_a + topic_b
    picked = kmeans_subset(items, 2, n_clusters=2, seed=0, dim=256)
    assert sorted(picked) == sorted([topic_a[0], topic_b[0]])  # one prototype per cluster
    four = kmeans_subset(items, 4, n_clusters=2, seed=0, dim=256)
    assert sorted(four[:2]) == sorted([topic_a[0], topic_b[0]]) and len(four) == 4
    assert kmeans_subset(items, 4, n_clusters=2, seed=0, dim=256) == four  # seeded


def test_kmeans_top_clusters_takes_whole_clusters_largest_first():
    # three topics of sizes 5, 3 and 2 (App. D.3: clusters sorted by size, samples from the top clusters)
    big = [f"solve the quadratic equation x^2 - {i}x + 6 = 0" for i in range(5)]
    mid = [f"find the area of the triangle with sides {i} 4 5" for i in range(3)]
    small = [f"how many primes are below {i}00 in total" for i in range(2)]
    items = small + mid + big
    from openrlhf_steer.data.subsets import kmeans_top_clusters_subset

    five = kmeans_top_clusters_subset(items, 5, n_clusters=3, seed=0, dim=512)
    assert sorted(five) == sorted(big)  # exactly the largest cluster
    eight = kmeans_top_clusters_subset(items, 8, n_clusters=3, seed=0, dim=512)
    assert sorted(eight) == sorted(big + mid)  # then the second largest: nested subsets
    six = kmeans_top_clusters_subset(items, 6, n_clusters=3, seed=0, dim=512)
    assert set(big) < set(six) and len(set(six) & set(mid)) == 1  # the last cluster is cut


def test_make_subset_registry():
    assert make_subset("random", list(range(10)), 3, seed=1) == random_subset(list(range(10)), 3, seed=1)
    with pytest.raises(ValueError, match="unknown subset strategy"):
        make_subset("stratified", [1, 2], 1)


# --------------------------------------------------------------------------------------------------
# reproduce/prepare_data.py (the CLI the table runs call)
# --------------------------------------------------------------------------------------------------
def test_prepare_data_cli_writes_subsets_and_resumes(tmp_path, capsys):
    from steertest_reproduce import REPRODUCE  # noqa: F401  (puts reproduce/ on sys.path)
    import prepare_data

    problems = [f"Compute {i} plus {i}." for i in range(12)]
    rows = [hf_row(p, str(2 * i), f"i{i}") for i, p in enumerate(problems)] * 3  # repeated like the HF file
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    out = tmp_path / "full.jsonl"
    assert prepare_data.main(["--source", str(src), "--output", str(out)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["label"] for w in written] == [str(2 * i) for i in range(12)]
    manifest = json.loads((tmp_path / "full.jsonl.manifest.json").read_text())
    assert manifest["load_stats"] == {"rows_read": 36, "unique": 12, "duplicates_dropped": 24, "answer_conflicts": 0}
    capsys.readouterr()
    assert prepare_data.main(["--source", str(src), "--output", str(out)]) == 0
    assert "is up to date" in capsys.readouterr().out  # resume: nothing rewritten

    sub = tmp_path / "rand.jsonl"
    assert (
        prepare_data.main(
            ["--source", str(src), "--output", str(sub), "--subset", "random", "--size", "5", "--seed", "3"]
        )
        == 0
    )
    picked = [json.loads(line)["source_index"] for line in sub.read_text().splitlines()]
    expected = [f"i{int(i)}" for i in np.random.default_rng(3).choice(12, size=5, replace=False)]
    assert picked == expected
    km = tmp_path / "km.jsonl"
    assert (
        prepare_data.main(
            ["--source", str(src), "--output", str(km), "--subset", "kmeans", "--size", "4", "--clusters", "2"]
        )
        == 0
    )
    assert len(km.read_text().splitlines()) == 4
    with pytest.raises(SystemExit, match="--size"):
        prepare_data.main(["--source", str(src), "--output", str(km), "--subset", "kmeans"])
