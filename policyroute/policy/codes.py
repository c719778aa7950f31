"""Every diagnostic code policyroute reports, with its default severity and one line each.

Codes are stable: CI jobs and editors key on them. ``PR0xx`` are found while reading the file
and checking it against the JSON Schema; ``PR1xx`` by the semantic checks that follow.

Example:
    >>> CODES["PR101"].summary
    'a route targets a model or group that is not defined'
    >>> CODES["PR105"].severity
    'warning'
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

from policyroute.policy.diagnostics import Severity

__all__ = ["CODES", "CodeInfo"]


class CodeInfo(NamedTuple):
    """A diagnostic code's default severity and summary."""

    severity: Severity
    summary: str


_E: Severity = "error"
_W: Severity = "warning"

CODES = MappingProxyType(
    {
        # ---- load
        "PR001": CodeInfo(_E, "the file cannot be read (missing, unreadable or not UTF-8 text)"),
        "PR002": CodeInfo(_E, "YAML syntax error (including tabs used for indentation)"),
        "PR003": CodeInfo(_E, "a key appears twice in the same mapping"),
        "PR004": CodeInfo(_E, "a number is out of range (infinite, not a number, too many digits)"),
        "PR005": CodeInfo(_E, "the policy file is empty"),
        "PR006": CodeInfo(_E, "the top level of the policy is not a mapping"),
        "PR007": CodeInfo(_E, "a mapping key is not a plain value, or a merge key is misused"),
        "PR008": CodeInfo(_E, "an unsupported YAML tag (e.g. !!python/object) is used"),
        "PR009": CodeInfo(
            _E, "aliases expand too far, an alias refers to itself, or nesting is too deep"
        ),
        # ---- schema
        "PR010": CodeInfo(_E, "unknown property"),
        "PR011": CodeInfo(_E, "a required property is missing"),
        "PR012": CodeInfo(_E, "a value has the wrong type"),
        "PR013": CodeInfo(_E, "a value is not allowed (enum, constant, pattern or range)"),
        "PR014": CodeInfo(_E, "a list or mapping has too few or too many entries"),
        "PR015": CodeInfo(_E, "a list that must hold distinct items repeats one"),
        "PR016": CodeInfo(_E, "a value matches none of the allowed forms"),
        "PR017": CodeInfo(_E, "a %YAML directive asks for a YAML version other than 1.2"),
        "PR018": CodeInfo(_E, "the file is a policy tests file (it has 'cases'), not a policy"),
        # ---- semantic: references
        "PR101": CodeInfo(_E, "a route targets a model or group that is not defined"),
        "PR102": CodeInfo(_E, "a group lists a model or group that is not defined"),
        "PR103": CodeInfo(_E, "a budget downgrades to a route or group that is not defined"),
        "PR104": CodeInfo(_E, "a budget lists a route that is not defined"),
        "PR105": CodeInfo(_W, "a model is never used by a group, route or budget"),
        "PR106": CodeInfo(_W, "a group is never used by a route, group or budget"),
        # ---- semantic: names and structure
        "PR107": CodeInfo(_E, "a name is both a model alias and a group name"),
        "PR108": CodeInfo(_E, "two routes have the same name"),
        "PR109": CodeInfo(_E, "two budgets have the same name"),
        "PR110": CodeInfo(_E, "a route can never match: an earlier route matches every request"),
        "PR111": CodeInfo(_E, "no route matches every request (no catch-all route)"),
        "PR112": CodeInfo(_E, "groups contain each other in a cycle"),
        "PR113": CodeInfo(_E, "budget downgrades lead from a route back to itself"),
        "PR114": CodeInfo(_E, "the weights of a weighted group sum to zero"),
        # ---- semantic: conditions
        "PR115": CodeInfo(_E, "a regex does not compile"),
        "PR116": CodeInfo(_E, "a fact path is not valid (unknown fact, empty segment)"),
        "PR117": CodeInfo(_E, "an operator or value can never hold for the fact's type"),
        # ---- semantic: models, secrets, environment
        "PR118": CodeInfo(_E, "litellm cannot price a model and the policy gives no price"),
        "PR119": CodeInfo(_W, "an ${ENV_VAR} is not set (an error under strict mode)"),
        "PR120": CodeInfo(_E, "api_key is a literal instead of one ${ENV_VAR} reference"),
        "PR121": CodeInfo(_E, "${ENV_VAR} is used where it is not expanded"),
        "PR122": CodeInfo(_E, "a budget's timezone is not a known IANA time zone"),
        "PR123": CodeInfo(_E, "a budget's warn_at fractions are not strictly ascending"),
        "PR124": CodeInfo(_E, "a group's require filters out every member"),
        "PR125": CodeInfo(_E, "a route's require filters out every candidate"),
        "PR126": CodeInfo(_E, "an ${...} reference is malformed"),
        "PR127": CodeInfo(_E, "a regex can backtrack catastrophically (exponential or cubic time)"),
        "PR128": CodeInfo(_E, "a budget's downgrade target is both a route and a model or group"),
        "PR129": CodeInfo(_E, "groups nest too deep or expand to too many entries"),
        "PR130": CodeInfo(_W, "a weighted group reaches one model through two of its members"),
        "PR131": CodeInfo(_E, "the redis store has no url"),
        "PR132": CodeInfo(_E, "store.url is set but the backend is not redis"),
        "PR133": CodeInfo(_W, "a store setting does nothing with the chosen backend"),
        "PR134": CodeInfo(
            _W, "a budget covers a model whose output nothing bounds (no max_tokens, no limit)"
        ),
        "PR135": CodeInfo(_W, "api_base's user info replaces the api_key this deployment sends"),
        "PR136": CodeInfo(_E, "api_base is not an http:// or https:// URL (also after ${ENV})"),
        "PR137": CodeInfo(_E, "a budget's limit_usd is below one nano-dollar and counts as 0"),
        "PR138": CodeInfo(_E, "receipts.path or store.path names a directory, not a file"),
        "PR139": CodeInfo(
            _E,
            "store.url is not a Redis URL (redis, rediss, unix, redis+cluster, redis+sentinel)",
        ),
        "PR140": CodeInfo(
            _E, "a params.extra_headers value cannot be sent (not ASCII, a control character)"
        ),
        "PR141": CodeInfo(_E, "a budget's rolling window is shorter than 1ms"),
        "PR142": CodeInfo(
            _W, "retry.on lists an error class a retry of the same deployment cannot fix"
        ),
        "PR143": CodeInfo(_W, "a file path holds a {placeholder} that nothing fills"),
        "PR144": CodeInfo(
            _W, "clamp_max_tokens' min_tokens is above the output limit of every model covered"
        ),
        "PR145": CodeInfo(_W, "a budget downgrades to the only route it guards"),
    }
)
