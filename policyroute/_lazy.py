"""Lazy, reproducible import of litellm.

``import litellm`` fetches a fresh price map over the network unless
``LITELLM_LOCAL_MODEL_COST_MAP`` is true, and its first Bedrock call fetches its rules for
Anthropic beta headers from GitHub unless ``LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS`` is true (a
wait of up to 5 s on a call's path where the network is closed). policyroute defaults both to
true, so prices (and so budgets and receipts) are reproducible and nothing is fetched from the
network but the providers. A user who wants the live copies sets the variables to ``False``
before the first call. litellm takes seconds to import, so it is
imported on first use only: validating a policy never pays for it.

Token counting (for ``input_tokens`` conditions and worst-case budget estimates) uses
tiktoken, which litellm bundles; Hugging Face tokenizer downloads stay off unless
``POLICYROUTE_ALLOW_TOKENIZER_DOWNLOAD=1``.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

__all__ = ["import_litellm", "litellm_version"]

_litellm: ModuleType | None = None


def import_litellm() -> Any:
    """Import litellm once, with the local price map unless the user chose otherwise."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
        import litellm

        # policyroute owns the only retry layer; litellm must not retry on its own.
        litellm.num_retries = 0
        # litellm prints a "Provider List" banner to stdout whenever it cannot price a model
        # itself; policy-priced deployments hit that on every call.
        litellm.suppress_debug_info = True
        # Token counts for budgets must not depend on reaching the Hugging Face hub: without
        # this, counting tokens for a llama or cohere model tries a download (and retries for
        # ~25 s offline) before falling back to tiktoken.
        if os.environ.get("POLICYROUTE_ALLOW_TOKENIZER_DOWNLOAD", "").lower() not in {"1", "true"}:
            litellm.disable_hf_tokenizer_download = True
        _litellm = litellm
    return _litellm


def litellm_version() -> str:
    """The installed litellm version, read from package metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litellm")
    except PackageNotFoundError:
        return "unknown"
