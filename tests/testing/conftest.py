"""Keep litellm's Anthropic calls offline: it fetches a beta-headers config on first use."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
