"""Shared test setup: offline, reproducible litellm."""

from __future__ import annotations

import os

# litellm fetches a live price map at import unless told otherwise; tests must stay offline
# and reproducible.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
