"""Entropy-control methods: ``build_method(name, options)``, ``compose_methods``, ``describe_methods``.

Each module of this package defines methods and registers them with ``@register_method``; the registry
finds them by scanning the package (``openrlhf_steer.methods.registry``). ``openrlhf-steer methods`` lists
them with their papers, options and the file each one lives in.
"""

from __future__ import annotations

from openrlhf_steer.core.types import AGG_MODES, GroupInputs, LossConfig, LossInputs  # noqa: F401
from openrlhf_steer.methods.base import Method, MethodConfig  # noqa: F401
from openrlhf_steer.methods.compose import ComposedMethod, compose_methods  # noqa: F401
from openrlhf_steer.methods.describe import describe_methods, method_hooks, methods_markdown_table  # noqa: F401
from openrlhf_steer.methods.needs import MethodNeeds, method_needs  # noqa: F401
from openrlhf_steer.methods.registry import (  # noqa: F401
    available_methods,
    build_method,
    get_method_class,
    load_methods,
    method_location,
    register_method,
)
