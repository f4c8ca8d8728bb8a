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


# The model-free fallback featuriser at a small dimension (the default is App. D.3's model features).
TFIDF_256 = {"featurizer": "hashed_tfidf", "featurizer_options": {"dim": 256}}


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
    picked = kmeans_subset(items, 2, n_clusters=2, seed=0, **TFIDF_256)
    assert sorted(picked) == sorted([topic_a[0], topic_b[0]])  # one prototype per cluster
    four = kmeans_subset(items, 4, n_clusters=2, seed=0, **TFIDF_256)
    assert sorted(four[:2]) == sorted([topic_a[0], topic_b[0]]) and len(four) == 4
    assert kmeans_subset(items, 4, n_clusters=2, seed=0, **TFIDF_256) == four  # seeded


def test_kmeans_top_clusters_takes_whole_clusters_largest_first():
    # three topics of sizes 5, 3 and 2 (App. D.3: clusters sorted by size, samples from the top clusters)
    big = [f"solve the quadratic equation x^2 - {i}x + 6 = 0" for i in range(5)]
    mid = [f"find the area of the triangle with sides {i} 4 5" for i in range(3)]
    small = [f"how many primes are below {i}00 in total" for i in range(2)]
    items = small + mid + big
    from openrlhf_steer.data.subsets import kmeans_top_clusters_subset

    five = kmeans_top_clusters_subset(
        items, 5, n_clusters=3, seed=0, featurizer="hashed_tfidf", featurizer_options={"dim": 512}
    )
    assert sorted(five) == sorted(big)  # exactly the largest cluster
    eight = kmeans_top_clusters_subset(
        items, 8, n_clusters=3, seed=0, featurizer="hashed_tfidf", featurizer_options={"dim": 512}
    )
    assert sorted(eight) == sorted(big + mid)  # then the second largest: nested subsets
    six = kmeans_top_clusters_subset(
        items, 6, n_clusters=3, seed=0, featurizer="hashed_tfidf", featurizer_options={"dim": 512}
    )
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
            [
                "--source",
                str(src),
                "--output",
                str(km),
                "--subset",
                "kmeans",
                "--size",
                "4",
                "--clusters",
                "2",
                "--featurizer",
                "hashed_tfidf",
            ]
        )
        == 0
    )
    assert len(km.read_text().splitlines()) == 4
    with pytest.raises(SystemExit, match="--size"):
        prepare_data.main(["--source", str(src), "--output", str(km), "--subset", "kmeans"])


# --------------------------------------------------------------------------------------------------
# Featurisers (openrlhf_steer/data/featurizers.py): App. D.3's mean-pooled final-layer states
# --------------------------------------------------------------------------------------------------
WORDS = "solve the quadratic equation find area of triangle circle with sides radius how many primes are below".split()


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    """A randomly initialised 2-layer Qwen2 (the paper model's family) with a byte-level BPE tokenizer (Qwen2's
    kind, which transformers loads for a qwen2 folder), as an HF folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" ".join(WORDS)] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<pad>")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    out = tmp_path_factory.mktemp("tiny_qwen2")
    Qwen2Model(config).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def hand_mean_pool(model_dir, text):
    """The masked mean computed by hand: one text alone (no padding, no mask), plain mean over its tokens of the
    final hidden state."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    ids = AutoTokenizer.from_pretrained(model_dir)(text, add_special_tokens=False)["input_ids"]
    assert len(ids) >= 1
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
    return hidden.numpy().mean(axis=0)


# five lengths (6, 5, 3, 2 and 1 words): batched two by two in order of length, every pair is padded
PROMPTS = [
    "solve the quadratic",
    "find area of triangle with sides",
    "how many primes are below",
    "circle radius",
    "solve",
]


def test_mean_pooled_features_equal_the_hand_computed_masked_mean(tiny_qwen2):
    from openrlhf_steer.data import make_featurizer

    from transformers import AutoTokenizer

    lengths = [
        len(ids) for ids in AutoTokenizer.from_pretrained(tiny_qwen2)(PROMPTS, add_special_tokens=False)["input_ids"]
    ]
    assert len(set(lengths)) == 5  # distinct lengths: both two-prompt batches carry padding
    featurize = make_featurizer("mean_pooled_final_layer", model=str(tiny_qwen2), batch_size=2, device="cpu")
    x = featurize(PROMPTS)
    assert x.shape == (5, 16) and x.dtype == np.float32
    for row, text in zip(x, PROMPTS):
        np.testing.assert_allclose(row, hand_mean_pool(tiny_qwen2, text), rtol=1e-5, atol=1e-6)
    assert featurize.forward_batches == 3  # ceil(5 / 2)
    assert not np.allclose(x[0], x[4])  # a prefix of a prompt pools to another vector


def test_masked_mean_drops_padding_and_refuses_an_empty_row():
    import torch

    from openrlhf_steer.data.featurizers import masked_mean

    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # row 0: mean of [0,1] and [2,3]; row 1: [6,7] alone
    np.testing.assert_allclose(masked_mean(hidden, mask).numpy(), [[1.0, 2.0], [6.0, 7.0]])
    with pytest.raises(ValueError, match="no unmasked token"):
        masked_mean(hidden, torch.tensor([[1, 0, 0], [0, 0, 0]]))


def test_embedding_cache_is_reused_and_resumes_a_missing_chunk(tiny_qwen2, tmp_path):
    from openrlhf_steer.data import make_featurizer

    options = dict(model=str(tiny_qwen2), batch_size=1, device="cpu", cache_dir=str(tmp_path), chunk_size=2)
    first = make_featurizer("mean_pooled_final_layer", **options)
    x = first(PROMPTS)
    assert first.forward_batches == 5
    files = sorted(tmp_path.rglob("*.npy"))
    assert len(files) == 3  # chunks of 2, 2 and 1 prompts
    assert not list(tmp_path.rglob("*.tmp")), "atomic writes leave no temporary file"

    again = make_featurizer("mean_pooled_final_layer", **options)
    np.testing.assert_array_equal(again(PROMPTS), x)
    assert again.forward_batches == 0  # every vector came from the cache

    files[0].unlink()  # an interrupted run: one chunk never written
    resumed = make_featurizer("mean_pooled_final_layer", **options)
    np.testing.assert_array_equal(resumed(PROMPTS), x)
    assert resumed.forward_batches in (1, 2) and len(list(tmp_path.rglob("*.npy"))) == 3

    other = make_featurizer("mean_pooled_final_layer", **dict(options, max_length=2))
    y = other(PROMPTS)  # other settings, other cache entries (truncation changes the vectors)
    assert other.forward_batches == 5 and not np.allclose(y[0], x[0])


def test_featurizer_registry_names_the_choices():
    from openrlhf_steer.data import DEFAULT_FEATURIZER, FEATURIZERS, make_featurizer

    assert DEFAULT_FEATURIZER == "mean_pooled_final_layer"
    assert {"mean_pooled_final_layer", "hashed_tfidf"} <= set(FEATURIZERS)
    with pytest.raises(ValueError, match="unknown featuriser 'bert'"):
        make_featurizer("bert")
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['model'\]"):
        make_featurizer("hashed_tfidf", model="x")
    np.testing.assert_array_equal(make_featurizer("hashed_tfidf", dim=32)(["a b"]), hashed_tfidf(["a b"], dim=32))


def test_kmeans_subsets_default_to_the_model_features(tiny_qwen2, monkeypatch):
    from openrlhf_steer.data import featurizers
    from openrlhf_steer.data.subsets import kmeans_top_clusters_subset

    seen = {}

    class Recording(featurizers.MeanPooledFinalLayer):
        def __call__(self, texts):
            seen["model"] = self.model
            return super().__call__(texts)

    monkeypatch.setitem(featurizers.FEATURIZERS, "mean_pooled_final_layer", Recording)
    picked = kmeans_top_clusters_subset(
        PROMPTS, 3, n_clusters=2, seed=0, featurizer_options={"model": str(tiny_qwen2), "device": "cpu"}
    )
    assert seen["model"] == str(tiny_qwen2) and len(set(picked)) == 3
    # the same features passed as a matrix-returning callable give the same subset
    x = featurizers.make_featurizer("mean_pooled_final_layer", model=str(tiny_qwen2), device="cpu")(PROMPTS)
    assert kmeans_top_clusters_subset(PROMPTS, 3, n_clusters=2, seed=0, featurizer=lambda texts: x) == picked


def test_prepare_data_cli_embeds_with_the_model_by_default(tiny_qwen2, tmp_path):
    from steertest_reproduce import REPRODUCE  # noqa: F401  (puts reproduce/ on sys.path)
    import prepare_data

    rows = [hf_row(p, str(i), f"i{i}") for i, p in enumerate(PROMPTS)]
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    out = tmp_path / "km.jsonl"
    argv = ["--source", str(src), "--output", str(out), "--subset", "kmeans_top_clusters", "--size", "3"]
    assert prepare_data.main(argv + ["--clusters", "2", "--embed-model", str(tiny_qwen2)]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert list((tmp_path / "embedding_cache").rglob("*.npy")), "the default featuriser caches next to the output"
    manifest = json.loads((tmp_path / "km.jsonl.manifest.json").read_text())
    assert manifest["request"]["featurizer"] == "mean_pooled_final_layer"
    assert manifest["request"]["embed_model"] == str(tiny_qwen2)
