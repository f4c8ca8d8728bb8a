"""The generate path: HF transformers with a tiny random model, the resumable cache, the
OpenAI-compatible HTTP backend against a local server, and the vLLM adapter with a fake engine."""

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openrlhf_steer_eval.backends import BackendConfig, SamplingConfig, problem_seed
from openrlhf_steer_eval.cli import main


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from steertest_evalmodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_eval_model"))


def gen_argv(model, data_dir, out, *extra):
    return [
        "--model",
        str(model),
        "--backend",
        "hf",
        "--benchmarks",
        "aime24",
        "--data-dir",
        str(data_dir),
        "--limit",
        "3",
        "--n",
        "2",
        "--max-tokens",
        "8",
        "--output-dir",
        str(out),
        "--grader-workers",
        "0",
        "--batch-size",
        "2",
        "-q",
        *extra,
    ]


def read_cache(out):
    files = list((out / "generations").glob("aime24-*.jsonl"))
    assert len(files) == 1
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def test_cli_generate_then_resume_without_regenerating(tiny_model, data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(gen_argv(tiny_model, data_dir, out)) == 0
    cache = read_cache(out)
    assert [r["id"] for r in cache] == ["60", "61", "62"]
    assert all(len(r["responses"]) == 2 and all(isinstance(t, str) for t in r["responses"]) for r in cache)
    assert [r["seed"] for r in cache] == [problem_seed(0, "aime24", pid) for pid in ("60", "61", "62")]
    res = json.loads((out / "results.json").read_text())
    info = res["benchmarks"]["aime24"]
    assert info["sampling"]["n"] == 2 and info["sampling"]["max_tokens"] == 8
    assert info["sampling"]["temperature"] == 0.6 and info["sampling"]["top_p"] == 0.95  # benchmark defaults
    assert info["cached_problems"] == 0 and info["num_problems"] == 3
    assert res["generation_backend"]["backend"] == "hf"
    assert "aime24/math_verify/avg@2" in res["metrics"] and "aime24/qwen/pass@k:k=2&n=2" in res["metrics"]
    samples = [json.loads(line) for line in (out / "samples_aime24.jsonl").read_text().splitlines()]
    assert [(s["id"], s["sample"]) for s in samples] == [(p, j) for p in ("60", "61", "62") for j in (0, 1)]
    # the chat template of the tiny tokenizer was applied to a user message with the boxed instruction
    assert samples[0]["prompt"][0]["role"] == "user" and "\\boxed{}" in samples[0]["prompt"][0]["content"]

    # second run: everything comes from the cache; generating again would fail
    from openrlhf_steer_eval.backends import hf

    def no_generate(*a, **k):
        raise AssertionError("regenerated a cached problem")

    monkeypatch.setattr(hf.HFBackend, "generate", no_generate)
    # other pass@k list: re-scored, but the generations come from the cache
    assert main(gen_argv(tiny_model, data_dir, out, "--k", "1")) == 0
    res2 = json.loads((out / "results.json").read_text())
    assert res2["benchmarks"]["aime24"]["cached_problems"] == 3 and res2["complete"] is True
    assert "aime24/math_verify/pass@k:k=2&n=2" not in res2["metrics"]
    samples2 = [json.loads(line) for line in (out / "samples_aime24.jsonl").read_text().splitlines()]
    assert [s["response"] for s in samples2] == [s["response"] for s in samples]

    # identical command: the finished benchmark is reused without grading again
    from openrlhf_steer_eval import runner

    monkeypatch.setattr(runner, "make_grader", no_generate)
    assert main(gen_argv(tiny_model, data_dir, out, "--k", "1")) == 0
    res3 = json.loads((out / "results.json").read_text())
    assert res3["benchmarks"]["aime24"]["reused_from_previous_run"] is True
    assert res3["metrics"] == res2["metrics"]


def test_interrupted_run_resumes_where_it_stopped(tiny_model, data_dir, tmp_path, monkeypatch, capsys):
    from openrlhf_steer_eval.backends import hf

    out = tmp_path / "run"
    real_generate = hf.HFBackend.generate

    def crash_after_first_batch(self, prompts, sampling, seeds, progress=None):
        def save_then_crash(start, batch):
            progress(start, batch)
            raise KeyboardInterrupt

        return real_generate(self, prompts, sampling, seeds, progress=save_then_crash)

    monkeypatch.setattr(hf.HFBackend, "generate", crash_after_first_batch)
    assert main(gen_argv(tiny_model, data_dir, out)) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    first = read_cache(out)
    assert [r["id"] for r in first] == ["60", "61"]  # one batch of 2 problems was saved
    assert not (out / "results.json").exists()  # written only when every benchmark is done

    calls = []

    def counting(self, prompts, sampling, seeds, progress=None):
        calls.append(len(prompts))
        return real_generate(self, prompts, sampling, seeds, progress)

    monkeypatch.setattr(hf.HFBackend, "generate", counting)
    assert main(gen_argv(tiny_model, data_dir, out)) == 0
    assert calls == [1]  # only the missing problem
    cache = read_cache(out)
    assert [r["id"] for r in cache] == ["60", "61", "62"]
    assert cache[:2] == first
    assert json.loads((out / "results.json").read_text())["benchmarks"]["aime24"]["cached_problems"] == 2


def test_torn_cache_line_is_dropped(tmp_path):
    from openrlhf_steer_eval.cache import GenerationCache

    cache = GenerationCache(tmp_path, "aime24", {"sampling": {"n": 1}})
    cache.append([{"id": "a", "responses": ["x"]}])
    with cache.path.open("a") as fh:
        fh.write('{"id": "b", "respon')  # crash mid-write
    assert cache.load() == {"a": ["x"]}
    cache.append([{"id": "b", "responses": ["y"]}])
    assert cache.load() == {"a": ["x"], "b": ["y"]}


def test_hf_left_padding_and_seeds(tiny_model):
    from openrlhf_steer_eval.backends.hf import HFBackend

    backend = HFBackend(BackendConfig(model=str(tiny_model), batch_size=2, device="cpu"))
    assert backend.tokenizer.padding_side == "left"
    greedy = SamplingConfig(n=2, temperature=0.0, max_tokens=6)
    short, long = "1+1=", "what is (12*3)-4 ? answer:"
    alone = backend.generate([short], greedy, [0])[0]
    batched = backend.generate([long, short], greedy, [0, 0])
    assert batched[1] == alone  # left padding leaves the short prompt's greedy continuation unchanged
    assert alone[0] == alone[1]  # greedy: n copies of one decode
    hot = SamplingConfig(n=3, temperature=1.0, top_p=1.0, max_tokens=6)
    a = backend.generate([short], hot, [123])
    b = backend.generate([short], hot, [123])
    c = backend.generate([short], hot, [124])
    assert a == b and a != c
    with pytest.raises(ValueError, match="--no-chat-template"):
        from openrlhf_steer_eval.backends.hf import render_prompt

        class NoTemplate:
            chat_template = None

        render_prompt(NoTemplate(), [{"role": "user", "content": "hi"}])


# ------------------------------------------------------------------------------------------ OpenAI HTTP
class _Handler(BaseHTTPRequestHandler):
    requests = []
    fail_first = 0
    max_choices = 99
    answer = "\\boxed{204}"

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.requests.append((self.path, body, self.headers.get("Authorization")))
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        k = min(body["n"], cls.max_choices)
        if self.path == "/v1/chat/completions":
            choices = [{"index": i, "message": {"role": "assistant", "content": cls.answer}} for i in range(k)]
        else:
            choices = [{"index": i, "text": cls.answer} for i in range(k)]
        data = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.requests, _Handler.fail_first, _Handler.max_choices = [], 0, 99
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_openai_chat_backend_end_to_end(server, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_EVAL_KEY", "sk-test")
    _Handler.fail_first = 1  # one 503 that must be retried
    out = tmp_path / "o"
    code = main(
        [
            "--model",
            "served-model",
            "--backend",
            "openai",
            "--base-url",
            server + "/v1",
            "--api-key-env",
            "TEST_EVAL_KEY",
            "--benchmarks",
            "aime24",
            "--data-dir",
            str(data_dir),
            "--limit",
            "3",
            "--n",
            "2",
            "--temperature",
            "0.7",
            "--top-p",
            "0.9",
            "--max-tokens",
            "64",
            "--seed",
            "5",
            "--output-dir",
            str(out),
            "--grader-workers",
            "0",
            "-q",
        ]
    )
    assert code == 0
    ok = [r for r in _Handler.requests[1:]]
    assert len(_Handler.requests) == 4 and len(ok) == 3
    path, body, auth = ok[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert body["model"] == "served-model" and body["n"] == 2 and body["temperature"] == 0.7
    assert body["top_p"] == 0.9 and body["max_tokens"] == 64
    assert body["messages"][-1]["role"] == "user" and "\\boxed{}" in body["messages"][-1]["content"]
    assert sorted(b["seed"] for _, b, _ in ok) == sorted(problem_seed(5, "aime24", p) for p in ("60", "61", "62"))
    res = json.loads((out / "results.json").read_text())
    # the server always answers 204, which is the gold of problem 60 only: c = 2, 0, 0
    assert res["metrics"]["aime24/math_verify/avg@2"] == pytest.approx(1 / 3)
    assert res["metrics"]["aime24/qwen/pass@k:k=1&n=2"] == pytest.approx(1 / 3)


def test_openai_completions_endpoint_and_choice_shortfall(server):
    from openrlhf_steer_eval.backends.openai_http import OpenAIBackend

    _Handler.max_choices = 1  # a server that ignores n
    backend = OpenAIBackend(BackendConfig(model="m", base_url=server, batch_size=2, max_retries=0))
    out = backend.generate(["Question: 1+1?\nAnswer: ", "Q2"], SamplingConfig(n=3, max_tokens=5), [1, 2])
    assert out == [["\\boxed{204}"] * 3] * 2
    assert {p for p, _, _ in _Handler.requests} == {"/v1/completions"}
    assert len(_Handler.requests) == 6 and _Handler.requests[0][1]["prompt"] in ("Question: 1+1?\nAnswer: ", "Q2")


def test_openai_unreachable_server_is_a_clear_error():
    from openrlhf_steer_eval.backends.openai_http import OpenAIBackend

    backend = OpenAIBackend(BackendConfig(model="m", base_url="http://127.0.0.1:9", max_retries=0))
    with pytest.raises(RuntimeError, match="Is the server running"):
        backend.generate(["x"], SamplingConfig(n=1), [0])


# ------------------------------------------------------------------------------------------ vLLM adapter
def test_vllm_backend_passes_per_prompt_seeds(monkeypatch, tiny_model):
    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen["init"] = kwargs

        def get_tokenizer(self):
            from openrlhf_steer_eval.backends.hf import load_tokenizer

            return load_tokenizer(str(tiny_model))

        def generate(self, texts, params, use_tqdm=True):
            seen["texts"], seen["params"] = texts, params
            return [
                types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"{len(str(t))}#{i}") for i in range(p.n)])
                for t, p in zip(texts, params)
            ]

    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM
    fake.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    fake.__version__ = "fake"
    monkeypatch.setitem(sys.modules, "vllm", fake)
    from openrlhf_steer_eval.backends import make_backend

    backend = make_backend("vllm", BackendConfig(model=str(tiny_model), tensor_parallel_size=2))
    out = backend.generate(
        ["abc", [{"role": "user", "content": "hi"}]], SamplingConfig(n=2, temperature=0.6, max_tokens=7), [11, 22]
    )
    assert seen["init"]["tensor_parallel_size"] == 2
    assert [p.seed for p in seen["params"]] == [11, 22] and all(p.max_tokens == 7 for p in seen["params"])
    tok = backend.tokenizer
    # chat rendered with the tokenizer's template, then passed as token ids without added special tokens
    assert seen["texts"][0] == "abc"
    assert tok.decode(seen["texts"][1]["prompt_token_ids"]) == "<user>hi\n<assistant>"
    assert out == [["3#0", "3#1"], [f"{len(str(seen['texts'][1]))}#0", f"{len(str(seen['texts'][1]))}#1"]]


def test_hf_ignores_checkpoint_sampling_defaults(tiny_model, tmp_path):
    """A checkpoint's generation_config (e.g. Qwen-Instruct's repetition_penalty/top_k) must not change
    evaluation sampling: the results equal those of the same weights without such defaults."""
    import shutil

    from transformers import GenerationConfig

    from openrlhf_steer_eval.backends.hf import HFBackend

    tweaked = tmp_path / "tweaked"
    shutil.copytree(tiny_model, tweaked)
    GenerationConfig(
        repetition_penalty=5.0,
        suppress_tokens=list(range(4, 60)),
        top_k=2,
        temperature=0.1,
        do_sample=True,
        eos_token_id=2,
        pad_token_id=0,
    ).save_pretrained(tweaked)
    hot = SamplingConfig(n=2, temperature=1.0, top_p=1.0, max_tokens=6)
    plain = HFBackend(BackendConfig(model=str(tiny_model), device="cpu")).generate(["1+1="], hot, [7])
    other = HFBackend(BackendConfig(model=str(tweaked), device="cpu"))
    assert other.generate(["1+1="], hot, [7]) == plain
    # control: with the checkpoint's defaults in place, the same request does come out different
    other.model.generation_config = GenerationConfig.from_pretrained(tweaked)
    assert other.model.generation_config.suppress_tokens == list(range(4, 60))
    assert other.generate(["1+1="], hot, [7]) != plain
