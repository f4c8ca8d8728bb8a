# openrlhf-steer GPU image: OpenRLHF 0.11.2 (Ray + vLLM + DeepSpeed) with the entropy-control methods,
# the reproduction scripts, the evaluation CLI, its benchmark data and NLTK punkt_tab baked in.
#
#   docker/prepare_context.sh                       # once: put the eval data into docker/eval-data/
#   docker build -t openrlhf-steer:0.1.0 .
#   docker run --gpus all --shm-size 16g -v "$PWD/runs:/opt/openrlhf-steer/runs" \
#       openrlhf-steer:0.1.0 reproduce/steer_table1.sh --dry-run
#
# Version pins below must equal setup.py's (tests/test_docker_pins.py checks it).
# The CUDA base must have the CUDA major version torch's PyPI wheel was built for, because
# flash-attn is compiled (or its prebuilt wheel chosen) against that toolkit.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu22.04
FROM ${CUDA_IMAGE}

ARG PYTHON_VERSION=3.11
ARG TORCH_VERSION=2.13.0
ARG TORCHVISION_VERSION=0.28.0
ARG TORCHAUDIO_VERSION=2.11.0
ARG TRANSFORMERS_VERSION=5.15.0
ARG OPENRLHF_VERSION=0.11.2
ARG VLLM_VERSION=0.29.0
ARG DEEPSPEED_VERSION=0.19.6
ARG FLASH_ATTN_VERSION=2.8.3
ARG RAY_VERSION=2.55.0
ARG LM_EVAL_VERSION=0.4.13
ARG PYYAML_VERSION=6.0.3
ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=84.2.1
ARG WHEEL_VERSION=0.46.3
ARG PACKAGING_VERSION=26.3
# flash-attn compiles for these GPU architectures when no prebuilt wheel matches (A100, H100/H20).
ARG TORCH_CUDA_ARCH_LIST="8.0;9.0"
ARG MAX_JOBS=8

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} \
    MAX_JOBS=${MAX_JOBS}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 from the deadsnakes PPA (Ubuntu 22.04 ships 3.10), git for hub downloads, build tools
# for flash-attn / DeepSpeed JIT ops.
# DL3008 (pin apt versions) is ignored on purpose: Ubuntu and the PPA drop superseded package versions
# after security updates, so exact apt pins break rebuilds; the base image tag and the Python pins
# below are what make the image reproducible.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" "python${PYTHON_VERSION}-dev" \
        build-essential ninja-build git curl ca-certificates libnuma1 \
    && rm -rf /var/lib/apt/lists/* \
    && "python${PYTHON_VERSION}" -m venv /opt/venv \
    && pip install "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}" "wheel==${WHEEL_VERSION}" "packaging==${PACKAGING_VERSION}"

# 1. torch (CUDA build from PyPI) first; every later install is constrained to it so nothing swaps it.
RUN printf 'torch==%s\ntorchvision==%s\ntorchaudio==%s\ntransformers==%s\n' \
        "${TORCH_VERSION}" "${TORCHVISION_VERSION}" "${TORCHAUDIO_VERSION}" "${TRANSFORMERS_VERSION}" > /opt/constraints.txt \
    && pip install -c /opt/constraints.txt "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" "torchaudio==${TORCHAUDIO_VERSION}"

# 2. vLLM, DeepSpeed, Ray, transformers (OpenRLHF 0.11.2's pins), then OpenRLHF itself.
RUN pip install -c /opt/constraints.txt \
        "vllm==${VLLM_VERSION}" "deepspeed==${DEEPSPEED_VERSION}" "ray[default]==${RAY_VERSION}" \
        "transformers==${TRANSFORMERS_VERSION}" \
    && pip install -c /opt/constraints.txt --no-deps "openrlhf==${OPENRLHF_VERSION}" \
    && pip install -c /opt/constraints.txt accelerate aiohttp bitsandbytes datasets einops "grpcio>=1.74.0" \
        "huggingface-hub>=1.0.0" isort jsonlines loralib optimum "optree>=0.15.0" peft pylatexenc "pynvml>=12.0.0" \
        sympy tensorboard torchdata torchmetrics transformers-stream-generator wandb

# 3. flash-attn after vLLM so that it is built against the final torch ABI.
RUN pip install -c /opt/constraints.txt --no-build-isolation "flash-attn==${FLASH_ATTN_VERSION}"

# 4. This package (entropy-control methods, launcher, eval CLI) and lm-eval's IF-Eval checkers.
WORKDIR /opt/openrlhf-steer
COPY setup.py README.md ./
COPY requirements/ requirements/
COPY openrlhf_steer/ openrlhf_steer/
COPY eval/ eval/
COPY reproduce/ reproduce/
COPY docker/entrypoint.sh docker/entrypoint.sh
RUN pip install -c /opt/constraints.txt ".[train]" \
    && pip install -c /opt/constraints.txt --no-deps "lm-eval==${LM_EVAL_VERSION}" \
    && pip install -c /opt/constraints.txt "PyYAML==${PYYAML_VERSION}" \
    && python -c "import openrlhf, vllm, deepspeed, flash_attn, openrlhf_steer, openrlhf_steer_eval; print('imports ok')"

# 5. Evaluation data and NLTK punkt_tab (prepared into the build context by docker/prepare_context.sh).
COPY docker/eval-data/ /opt/eval-data/
RUN test -f /opt/eval-data/aime24/test.jsonl \
        || { echo "docker/eval-data is empty: run docker/prepare_context.sh before docker build" >&2; exit 1; } \
    && test -d /opt/eval-data/ifeval/nltk_data/tokenizers/punkt_tab/english
ENV OPENRLHF_STEER_DATA=/opt/eval-data \
    NLTK_DATA=/opt/eval-data/ifeval/nltk_data \
    HF_HOME=/opt/hf-cache

VOLUME ["/opt/openrlhf-steer/runs", "/opt/hf-cache"]
ENTRYPOINT ["/opt/openrlhf-steer/docker/entrypoint.sh"]
CMD ["--help"]
