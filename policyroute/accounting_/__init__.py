"""Parts of :mod:`policyroute.accounting` kept apart from :class:`PolicyAccounting` itself:
pricing and receipt records, budget threshold events, receipt emission to sinks, per-call
tallies, closing, building an accounting from a policy, and the shared default accounting of
each policy."""
