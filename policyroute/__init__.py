"""policyroute: declarative routing, fallback, budgets and cost receipts for LLM calls.

A YAML policy says which model answers which request, what happens on a 429 or an outage, and
how much may be spent by whom. policyroute validates it, compiles it into a fast router, and
runs each call through litellm with retries, fallback, circuit breaking, budget guards that
refuse before the call, and an exact cost receipt per attempt and per call.

Example:
    >>> from policyroute import ChatPolicyRoute  # doctest: +SKIP
    >>> llm = ChatPolicyRoute(policy="policies/tiered.yaml")  # doctest: +SKIP
    >>> llm.invoke("hello", config={"metadata": {"user_id": "u1"}})  # doctest: +SKIP

The heavy parts (litellm, LangChain) are imported on first use, so ``import policyroute`` and
``policyroute validate`` stay fast. Importing policyroute sets litellm's offline defaults
(:mod:`policyroute._lazy`) already, so an application that imports litellm itself afterwards
gets them too.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from policyroute.errors import (
    AllCandidatesFailedError,
    AllCandidatesRefusedError,
    AuthenticationError,
    BadRequestError,
    BudgetError,
    BudgetExceeded,
    BudgetStoreError,
    ContentPolicyError,
    ContextWindowExceededError,
    MalformedResponseError,
    ModelRefusalError,
    NoCandidateError,
    NotFoundError,
    PolicyError,
    PolicyRouteError,
    PolicyValidationError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ReceiptError,
    RequestError,
    RoutingError,
    ServerError,
    SinksRefusedError,
    StreamInterruptedError,
)
from policyroute.retries import retryable

# Before anyone imports litellm (this process's own code too): the installed price map and
# beta-header rules, not a network fetch at import (see policyroute._lazy).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

if TYPE_CHECKING:
    from policyroute.accounting import BudgetThresholdWarning
    from policyroute.api import acompletion, completion
    from policyroute.langchain import ChatPolicyRoute
    from policyroute.policy.compile import CompiledPolicy
    from policyroute.policy.diagnostics import Diagnostic
    from policyroute.policy.loader import load_policy, load_policy_text
    from policyroute.policy.validate import ValidationResult, validate_file, validate_text
    from policyroute.request import Request
    from policyroute.routing.decision import Candidate, Decision

__version__ = "0.1.0"

__all__ = [
    "AllCandidatesFailedError",
    "AllCandidatesRefusedError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "BudgetExceeded",
    "BudgetStoreError",
    "BudgetThresholdWarning",
    "Candidate",
    "ChatPolicyRoute",
    "CompiledPolicy",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "Decision",
    "Diagnostic",
    "MalformedResponseError",
    "ModelRefusalError",
    "NoCandidateError",
    "NotFoundError",
    "PolicyError",
    "PolicyRouteError",
    "PolicyValidationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ReceiptError",
    "Request",
    "RequestError",
    "RoutingError",
    "ServerError",
    "SinksRefusedError",
    "StreamInterruptedError",
    "ValidationResult",
    "__version__",
    "acompletion",
    "completion",
    "load_policy",
    "load_policy_text",
    "retryable",
    "validate_file",
    "validate_text",
]

_LAZY: dict[str, str] = {
    "BudgetThresholdWarning": "policyroute.accounting",
    "Candidate": "policyroute.routing.decision",
    "ChatPolicyRoute": "policyroute.langchain",
    "CompiledPolicy": "policyroute.policy.compile",
    "Decision": "policyroute.routing.decision",
    "Diagnostic": "policyroute.policy.diagnostics",
    "Request": "policyroute.request",
    "ValidationResult": "policyroute.policy.validate",
    "acompletion": "policyroute.api",
    "completion": "policyroute.api",
    "load_policy": "policyroute.policy.loader",
    "load_policy_text": "policyroute.policy.loader",
    "validate_file": "policyroute.policy.validate",
    "validate_text": "policyroute.policy.validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'policyroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
