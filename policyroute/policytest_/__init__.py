"""Parts of :mod:`policyroute.policytest` kept apart from loading and running tests files: the
case model (what a case may expect, how its shape is checked, and the results)."""
