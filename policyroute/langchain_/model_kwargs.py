"""Provider parameters given to ``ChatPolicyRoute``'s constructor: ``model_kwargs`` and any
keyword the model does not declare.

LangChain users write ``ChatOpenAI(top_p=0.9)`` or ``ChatOpenAI(model_kwargs={"seed": 1})`` and
expect the parameter on every request. langchain-core's models ignore undeclared keywords, so
without this step ``top_p`` (or a refused ``api_base``) would vanish without a word. Both forms
are gathered into ``model_kwargs`` (``ChatOpenAI``'s client options translated or refused:
see :mod:`policyroute.langchain_.openai_options`), checked as call parameters are (types, and
the arguments that would take over the policy or carry a credential header, refused with a
:class:`~policyroute.errors.RequestError`), and sent with every call as if passed to
``invoke``; a call's own keywords override them.

Example:
    >>> gather({"policy": "p.yaml", "top_p": 0.9}, {"policy"})
    {'policy': 'p.yaml', 'model_kwargs': {'top_p': 0.9}}
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from policyroute.errors import RequestError
from policyroute.langchain_ import openai_options
from policyroute.request_checks import check_params, refuse_policy_owned

__all__ = ["gather"]


def gather(values: Mapping[str, Any], declared: Collection[str]) -> dict[str, Any]:
    """``values`` (constructor keywords) with every keyword not in ``declared`` moved into
    ``model_kwargs``, checked.

    Raises :class:`RequestError` when ``model_kwargs`` is not a mapping, names a declared
    field (set it directly), repeats a keyword given on its own, holds a parameter of the
    wrong type, one that would take over the policy (``api_base``, ``num_retries``, ...), or
    a credential header in ``extra_headers``/``headers`` (``Authorization``, ``x-api-key``,
    ...: see :mod:`policyroute.api_headers`).

    Example:
        >>> try:
        ...     gather({"model_kwargs": {"temperature": 0}}, {"temperature", "model_kwargs"})
        ... except RequestError as exc:
        ...     print(exc)
        model_kwargs names 'temperature', a ChatPolicyRoute field: pass temperature=... instead
    """
    given = values.get("model_kwargs")
    if given is not None and not isinstance(given, Mapping):
        raise RequestError(
            f"model_kwargs must be a mapping of provider parameters, got {type(given).__name__}"
        )
    kwargs = dict(given or {})
    for name in kwargs:
        if name in declared:
            raise RequestError(
                f"model_kwargs names {name!r}, a ChatPolicyRoute field: pass {name}=... instead"
            )
    rest: dict[str, Any] = {}
    for name, value in values.items():
        if name in declared or name == "model_kwargs":
            rest[name] = value
        elif name in kwargs:
            raise RequestError(f"{name!r} is given both on its own and in model_kwargs")
        else:
            kwargs[name] = value
    if not openai_options.NAMES.isdisjoint(kwargs):
        # ChatOpenAI's client options (stream_usage, default_headers...) are not parameters;
        # default headers stay apart, for each call to merge with its own extra_headers.
        kwargs = openai_options.adapt(kwargs, merge_headers=False)
    sent = openai_options.adapt(kwargs) if "default_headers" in kwargs else kwargs
    # Refused here rather than at the first call: the model would carry a credential header
    # to every call, and its key to every candidate of the route.
    refuse_policy_owned(sent)
    check_params(sent)
    if kwargs or given is not None:
        rest["model_kwargs"] = kwargs
    return rest
