# openrlhf-steer GPU image: OpenRLHF 0.11.2 (Ray + vLLM + DeepSpeed) with the entropy-control methods,
# the reproduction scripts, the evaluation CLI, its benchmark data and NLTK punkt_tab baked in.
#
#   docker/prepare_context.sh --download            # once: fetch the eval data at pinned commits, checked
#   docker build -t openrlhf-steer:0.1.0 .
#   docker run --gpus all --shm-size 16g -v "$PWD/runs:/opt/openrlhf-steer/runs" \
#       openrlhf-steer:0.1.0 reproduce/steer_table1.sh --dry-run
#
# How each version was chosen (tests/test_docker_image.py checks them against the lock and setup.py):
# - Python packages: requirements/image.lock, the image's whole environment with exact versions and sha256
#   hashes, resolved by `make lock` from setup.py (install_requires + [train] + [ifeval]) for Linux x86_64,
#   glibc 2.35, Python 3.11. Nothing is resolved at build time: every pip call below installs a lock with
#   --no-deps --require-hashes.
# - Base image: torch 2.13.0's Linux x86_64 wheel on PyPI is a CUDA 13.0 build; the lock resolves it with
#   nvidia-cuda-runtime 13.0.96, nvidia-cudnn-cu13 and nvidia-nccl-cu13. The base is therefore CUDA 13.0
#   (13.0.2, the last 13.0 update; 13.0.0 and 13.0.1 ship the older cudart 13.0.48 and 13.0.88) with cuDNN,
#   as a devel tag for nvcc: nvcc 13.0 compiles flash-attn here and DeepSpeed's JIT ops at run time, and
#   torch.utils.cpp_extension refuses an nvcc whose CUDA major differs from torch's.
#   Ubuntu 22.04 has glibc 2.35, the manylinux_2_35 platform the lock is resolved for.
# - flash-attn 2.8.3: OpenRLHF 0.11.2 requires exactly flash-attn==2.8.3, which excludes the post-releases
#   (PEP 440), so `pip install '.[train]'` resolves only with it. PyPI has source distributions only (2.8.3,
#   2.8.3.post1, 2.8.3.post2; build needs torch, ninja, psutil, packaging). Their CUDA sources are the same
#   in 2.8.3 and post1: post1 only makes setup.py's prebuilt-wheel lookup name CUDA 13 "cu13" where 2.8.3
#   says "cu12"; post2 adds a backward-kernel fix for an int32 overflow at seqlen*heads*head_dim >= 2^31 in
#   a padded batch, far beyond these recipes' lengths. FLASH_ATTENTION_FORCE_BUILD=TRUE skips that lookup
#   (it would fetch an unhashed wheel), so the hash-checked 2.8.3 sources are compiled with nvcc 13.0.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-devel-ubuntu22.04
FROM ${CUDA_IMAGE}

ARG PYTHON_VERSION=3.11
# flash-attn compiles for these GPU architectures (A100, H100/H20); MAX_JOBS bounds nvcc's memory use.
ARG FLASH_ATTN_CUDA_ARCHS="80;90"
ARG MAX_JOBS=8

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    FLASH_ATTN_CUDA_ARCHS=${FLASH_ATTN_CUDA_ARCHS} \
    TORCH_CUDA_ARCH_LIST="8.0;9.0" \
    MAX_JOBS=${MAX_JOBS}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 from the deadsnakes PPA (Ubuntu 22.04 ships 3.10), git for hub downloads, build tools
# for flash-attn / DeepSpeed JIT ops.
# DL3008 (pin apt versions) is ignored on purpose: Ubuntu and the PPA drop superseded package versions
# after security updates, so exact apt pins break rebuilds; the base image tag and the Python lock are
# what make the image reproducible.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" "python${PYTHON_VERSION}-dev" \
        build-essential ninja-build git curl ca-certificates libnuma1 \
    && rm -rf /var/lib/apt/lists/* \
    && "python${PYTHON_VERSION}" -m venv /opt/venv

WORKDIR /opt/openrlhf-steer
COPY requirements/image-build.lock requirements/image.lock requirements/

# 1. What the source distributions build against: CUDA torch and the build tools (a subset of the lock, plus
#    the locked pip).
RUN pip install --no-deps --require-hashes -r requirements/image-build.lock

# 2. The rest of the lock. --no-build-isolation: flash-attn, DeepSpeed and a few pure-Python sdists build
#    against step 1's torch and tools instead of unhashed ones; DS_ACCELERATOR=cuda because no GPU is visible
#    while building. `pip check` confirms the environment is complete.
RUN FLASH_ATTENTION_FORCE_BUILD=TRUE DS_ACCELERATOR=cuda \
        pip install --no-deps --no-build-isolation --require-hashes -r requirements/image.lock \
    && pip check

# 3. This package (entropy-control methods, launcher, eval CLI); its requirements are all in the lock.
COPY setup.py README.md ./
COPY requirements/ requirements/
COPY openrlhf_steer/ openrlhf_steer/
COPY eval/ eval/
COPY reproduce/ reproduce/
COPY docker/entrypoint.sh docker/entrypoint.sh
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && python -c "import openrlhf, vllm, deepspeed, flash_attn, lm_eval, openrlhf_steer, openrlhf_steer_eval; print('imports ok')"

# 4. Evaluation data and NLTK punkt_tab (put into the build context by docker/prepare_context.sh, which
#    checks row counts and sha256 hashes against docker/eval-data.sha256).
COPY docker/eval-data/ /opt/eval-data/
RUN test -f /opt/eval-data/aime24/test.jsonl \
        || { echo "docker/eval-data is empty: run docker/prepare_context.sh --download before docker build" >&2; exit 1; } \
    && test -d /opt/eval-data/ifeval/nltk_data/tokenizers/punkt_tab/english
ENV OPENRLHF_STEER_DATA=/opt/eval-data \
    NLTK_DATA=/opt/eval-data/ifeval/nltk_data \
    HF_HOME=/opt/hf-cache

VOLUME ["/opt/openrlhf-steer/runs", "/opt/hf-cache"]
ENTRYPOINT ["/opt/openrlhf-steer/docker/entrypoint.sh"]
CMD ["--help"]
