"""Load a policy (its file, or its YAML text) into a compiled, ready-to-route policy, or fail
with every problem.

Example:
    >>> policy = load_policy("policies/support-assistant.yaml")  # doctest: +SKIP
    >>> policy.route(facts).route  # doctest: +SKIP
    'default'
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

from policyroute.errors import PolicyValidationError
from policyroute.policy.load import is_policy_text
from policyroute.policy.validate import ValidationResult, validate_file, validate_text

if TYPE_CHECKING:
    from policyroute.policy.compile import CompiledPolicy

__all__ = ["load_policy", "load_policy_text"]


def _compile(
    result: ValidationResult, source: str | None, rng: random.Random | None = None
) -> CompiledPolicy:
    from policyroute.policy.compile import compile_policy

    if not result.ok or result.spec is None:
        raise PolicyValidationError(result.diagnostics, source)
    return compile_policy(result.spec, source=source, content_hash=result.content_hash, rng=rng)


def load_policy(
    path: str | os.PathLike[str], *, strict: bool = False, rng: random.Random | None = None
) -> CompiledPolicy:
    """Validate and compile the policy at ``path``, or the policy's YAML text.

    A string with a line break is the policy's text, as everywhere a policy is "a path or the
    text" (:func:`~policyroute.policy.load.is_policy_text`); its diagnostics name
    ``<string>``. Raises :class:`~policyroute.errors.PolicyValidationError` carrying every
    diagnostic when the policy has errors (or, with ``strict``, warnings). ``rng`` is the
    random source of ``weighted`` orders (a seeded one makes them repeat, as policy tests need).
    """
    if is_policy_text(path):
        return _compile(validate_text(path, strict=strict), None, rng)
    source = os.fspath(path)
    return _compile(validate_file(source, strict=strict), source, rng)


def load_policy_text(text: str, *, file: str = "<string>") -> CompiledPolicy:
    """Validate and compile policy YAML given as text.

    Example:
        >>> load_policy_text("policyroute: 1\\nname: x\\n")  # doctest: +SKIP
        Traceback (most recent call last):
        PolicyValidationError: 2 error(s) in policy:
          ...
    """
    return _compile(validate_text(text, file=file), None)
