"""``ChatPolicyRoute``: a LangChain chat model whose every call is routed by a policy.

The model is a thin adapter: it converts messages and tools to litellm's shape
(:mod:`policyroute.langchain_.outbound`) and answers and usage back
(:mod:`policyroute._litellm`), reads the per-call routing facts (metadata, tags, run id) from
the call's own run manager (or its config, where langchain-core passes no run manager: see
:mod:`policyroute.langchain_.facts`), and hands the call to the
:class:`~policyroute.execution.executor.Executor`, which picks the deployment, retries, falls
over and accounts for the cost.

Example:
    >>> from policyroute import ChatPolicyRoute
    >>> llm = ChatPolicyRoute(policy="policies/strategies-budgets.yaml", temperature=0)
    ... # doctest: +SKIP
    >>> msg = llm.invoke("hi", config={"metadata": {"task": "code"}})  # doctest: +SKIP
    >>> msg.response_metadata["policyroute"]["route"]  # doctest: +SKIP
    'code'
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.load.serializable import SerializedConstructor, SerializedNotImplemented
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, Generation
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SkipValidation,
    field_validator,
    model_validator,
)

from policyroute.costs.redact import redact_params
from policyroute.errors import RequestError
from policyroute.execution.hooks import Accounting, check_accounting
from policyroute.execution.one_tool_call import ONE_TOOL_CALL_KEY
from policyroute.execution.response_format import SCHEMA_KEY
from policyroute.langchain_ import calls, events, model_kwargs, openai_options, shared, tokens
from policyroute.langchain_.cache_hits import cache_hits
from policyroute.langchain_.cache_key import RoutingFacts, llm_string
from policyroute.langchain_.copying import deep_copy, pickled_state, rebuild, rebuilds
from policyroute.langchain_.facts import (
    FACTS_KEY,
    OPEN_STREAMS,
    FactsCarryingChatModel,
    OpenStream,
)
from policyroute.langchain_.parsed import parse_target
from policyroute.langchain_.profile import is_resolved, policy_profile
from policyroute.langchain_.results import chat_result, combined_llm_output, invoke_answer
from policyroute.langchain_.serialization import (
    Withheld,
    constructor_kwargs,
    policy_from_env,
    serialised_policy,
)
from policyroute.langchain_.streams import astream_chunks, stream_chunks
from policyroute.langchain_.structured import StructuredMethod, structured_runnable
from policyroute.langchain_.tool_choice import Tool, bound_tools
from policyroute.policy.compile import CompiledPolicy
from policyroute.request_checks import refuse_policy_owned

if TYPE_CHECKING:
    # What langchain-core's own ``bind`` returns (its chat-model-typed binding).
    from langchain_core.language_models.chat_models import _ChatModelBinding

    from policyroute.execution.executor import Executor

__all__ = ["ChatPolicyRoute"]


class ChatPolicyRoute(FactsCarryingChatModel):
    """A LangChain chat model that routes each call through a policyroute policy.

    ``policy`` is a path to a policy file, the YAML text of a policy (any string with a line
    break) or a :class:`~policyroute.policy.compile.CompiledPolicy`; it is loaded and
    validated once, at construction (a broken policy raises
    :class:`~policyroute.errors.PolicyValidationError` with every diagnostic). When it is not
    given, ``$POLICYROUTE_POLICY`` supplies it, read by the same rule (a path, or YAML text if
    it has a line break); with neither, :class:`~policyroute.errors.PolicyError` says what to
    set. Call parameters set here are the caller's; the chosen route's ``params`` override
    them. Per-call routing facts come from the RunnableConfig:
    ``config={"metadata": {...}, "tags": [...]}``.

    ``model`` is the *requested* model, a fact that conditions can test (``model: gpt-4o``),
    not a command; a per-call ``model=`` keyword overrides it.

    An answer's ``response_metadata["policyroute"]`` says how the call was made: ``route``,
    ``deployment``, every attempt, ``cost`` (a decimal string, what its receipt charged) and
    ``request_id``. An answer from LangChain's LLM cache (``set_llm_cache`` or ``cache=``)
    spent nothing and has no receipt: its entry has ``cache_hit: True``, ``cost`` ``"0"``, no
    attempts, no ``request_id``, and the paid call's entry under ``original_call`` (as
    langchain-core sets the hit's ``usage_metadata["total_cost"]`` to 0 and keeps its token
    counts), so that summing ``cost`` over an agent's messages counts each paid call once.

    The model serialises with LangChain's ``dumpd``/``dumps`` under the id
    ``["policyroute", "langchain", "ChatPolicyRoute"]``; ``load`` rebuilds it given
    ``valid_namespaces=["policyroute"]`` and ``allowed_objects=[ChatPolicyRoute]`` (its
    ``"all"`` covers only the classes in langchain-core's own mapping). The policy is written
    as it was given: a path as the path (a relative one is read against the working directory
    when loaded), YAML text as the text (keys stay ``${VAR}`` references, read from the
    environment when loaded), a ``CompiledPolicy`` as the path of the file it was loaded from.
    What cannot be rebuilt or would carry a secret is written as a ``not_implemented`` entry
    saying why: a ``CompiledPolicy`` not loaded from a file, policy text holding a secret (a
    URL password, a credential header, the value of a referenced variable), and any
    ``accounting`` object (it holds live state such as budget stores). ``load`` refuses those
    unless given ``ignore_unserializable_fields=True``, which rebuilds the model without them:
    the policy then comes from ``$POLICYROUTE_POLICY``, the accounting from the policy.
    A ``profile`` given to the model is written and loaded as given; one resolved from the
    policy is not written, and the loaded model resolves it from its policy as it is then.

    Example:
        >>> llm = ChatPolicyRoute(policy="policies/strategies-budgets.yaml")  # doctest: +SKIP
        >>> llm.bind_tools([get_weather], tool_choice="any").invoke("Paris?")  # doctest: +SKIP
        >>> for chunk in llm.stream("hi", config={"tags": ["batch"]}):  # doctest: +SKIP
        ...     print(chunk.content, end="")
        >>> from langchain_core.load import dumpd, load
        >>> again = load(  # doctest: +SKIP
        ...     dumpd(llm), valid_namespaces=["policyroute"], allowed_objects=[ChatPolicyRoute])
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    policy: str | os.PathLike[str] | CompiledPolicy = Field(default_factory=policy_from_env)
    """A policy file's path, a policy's YAML text, or a compiled policy (default:
    ``$POLICYROUTE_POLICY``)."""
    model: str | None = Field(default=None, alias="model_name")
    """The requested model: a routing fact, not a command."""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    """Per-request timeout in seconds (the policy's ``defaults.timeout`` when unset)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    streaming: bool = False
    """Stream under ``invoke`` too (the answer is merged from the chunks)."""
    stream_usage: bool | None = None
    """Whether a stream's last chunk carries the call's ``usage_metadata`` (``None``: it
    does). ``False`` leaves it out, as it does for ``ChatOpenAI``; the provider is asked for
    usage all the same, so budgets and receipts stay exact. A call's ``stream_usage=`` or
    ``stream_options={"include_usage": ...}`` decides for that call."""
    accounting: SkipValidation[Accounting | None] = None
    """An :class:`~policyroute.execution.hooks.Accounting` replacing the policy's own budgets
    and receipts (``NullAccounting()`` turns them off); models given the same object share
    one executor (see :attr:`executor`). An object without its methods is refused with a
    ``RequestError`` when the model is built."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Provider parameters sent with every call, as if passed to ``invoke`` (a call's own
    keywords override them). Constructor keywords the model does not declare
    (``ChatPolicyRoute(policy=..., top_p=0.9)``) are gathered here."""

    _compiled: CompiledPolicy | None = PrivateAttr(default=None)
    _shared: bool = PrivateAttr(default=True)
    _executor: Executor | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _thresholds: bool = PrivateAttr(default=False)
    _read_facts: RoutingFacts | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        # Checked here: pydantic would read "yes" as True, and wrap a validator's error.
        openai_options.check_stream_usage(data.get("stream_usage"))
        check_accounting(data.get("accounting"))
        # langchain-core's models ignore undeclared keywords: ``top_p=0.9`` (or a refused
        # ``api_base``) would vanish without a word. Gathered here rather than in a validator
        # so that a refusal is the typed RequestError, not wrapped in pydantic's error.
        declared = set(type(self).model_fields)
        declared.update(f.alias for f in type(self).model_fields.values() if f.alias)
        if is_resolved(data.get("profile")):
            # another model's profile, resolved from its policy (configurable_fields passes
            # it on): this model resolves its own from its policy
            del data["profile"]
        super().__init__(**model_kwargs.gather(data, declared))

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_or_env(cls, policy: Any) -> Any:
        # An explicit None means "not given", as it does for LangChain's keys read from the
        # environment; ``load(..., ignore_unserializable_fields=True)`` passes it so.
        return policy_from_env() if policy is None else policy

    @model_validator(mode="after")
    def _load_policy(self) -> ChatPolicyRoute:
        # Loading here (not lazily) makes a broken policy fail at construction, with every
        # diagnostic, rather than at the first call.
        _ = self.compiled_policy
        return self

    # ------------------------------------------------------------------ copies

    def __getstate__(self) -> dict[Any, Any]:
        # The compiled policy and the executor do not pickle; the unpickled model loads the
        # policy again (see policyroute.langchain_.copying).
        return pickled_state(super().__getstate__(), self.policy, self.compiled_policy)

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        rebuild(self, None)
        _ = self.compiled_policy

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> ChatPolicyRoute:
        # The compiled policy is immutable and the accounting is live shared state: the copy
        # uses the same ones, and an executor of its own (see langchain_.copying.deep_copy).
        kept = (self.policy, self._compiled, self.accounting)
        return deep_copy(self, memo, kept, self._compiled)

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> ChatPolicyRoute:
        """A copy of the model; ``update`` replaces fields without validation, as pydantic's.

        A copy that updates ``policy`` loads the new policy (a broken one raises here) and
        describes it in its ``profile`` (unless the profile was given), and a copy that updates
        ``policy`` or ``accounting`` gets its own executor, so that it routes by the new policy
        and charges the new accounting.

        Example:
            >>> cheap = llm.model_copy(update={"policy": "policies/tiered.yaml"})  # doctest: +SKIP
        """
        if deep and update:
            # pydantic deep-copies the private state itself when a deep copy has an update,
            # bypassing __deepcopy__ (the compiled policy and the lock do not copy).
            copied = copy.deepcopy(self)
            copied.__dict__.update(update)
            copied.__pydantic_fields_set__.update(update.keys())
        else:
            copied = super().model_copy(update=update, deep=deep)
        if update is not None and rebuilds(update.keys()):
            keep = None if "policy" in update else self._compiled
            rebuild(copied, keep, shared=self._shared and not deep)
            _ = copied.compiled_policy
            if "policy" in update and "profile" not in update and is_resolved(copied.profile):
                copied.__dict__["profile"] = copied._resolve_model_profile()
        return copied

    # ------------------------------------------------------------------ serialisation

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """``True``: ``dumpd``/``load`` rebuild the model (see the class docstring)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["policyroute", "langchain"]``, fixed so that moving the module keeps saved ids."""
        return ["policyroute", "langchain"]

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """The model as LangChain serialises it: the policy as given, no accounting object.

        Example:
            >>> ChatPolicyRoute(policy="policies/tiered.yaml").to_json()["kwargs"]["policy"]
            'policies/tiered.yaml'
        """
        data = super().to_json()
        if data["type"] == "constructor":
            constructor_kwargs(data["kwargs"], self.policy, self.compiled_policy, self.accounting)
            if self.profile is not None and not is_resolved(self.profile):
                # langchain-core leaves ``profile`` out (``exclude=True``): a profile resolved
                # from the policy is resolved again when loaded (from the policy as it is
                # then), but one the user gave would be lost, and the loaded model would
                # describe its policy instead (an agent would choose another structured-output
                # strategy).
                data["kwargs"]["profile"] = dict(self.profile)
            kwargs = data["kwargs"].get("model_kwargs")
            if isinstance(kwargs, Mapping) and redact_params(kwargs) != kwargs:
                # Written redacted, a loaded model would send "[REDACTED]" as its credential.
                data["kwargs"]["model_kwargs"] = Withheld.of(
                    kwargs,
                    "model_kwargs hold a credential (a key, a credential header or a URL"
                    " password); pass it per call or through the policy's ${ENV_VAR} references",
                )
        return data

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Policy text may hold a URL password or a literal credential header, and model_kwargs
        # a key: shown as ``dumpd`` writes them (withheld text names fields, never values).
        for name, value in super().__repr_args__():
            if name == "policy" and isinstance(value, str) and self._compiled is not None:
                value = serialised_policy(value, self._compiled)
            elif name == "model_kwargs" and isinstance(value, Mapping):
                value = redact_params(value)
            yield name, value

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # langchain-core keys the cache of a serialisable model by its serialised form, which
        # names a policy file but not its content (see langchain_.cache_key.llm_string).
        read = self._read_facts
        if read is None:
            read = self._read_facts = RoutingFacts.of(self.compiled_policy)
        return llm_string(self, read, stop, kwargs)

    def _convert_cached_generations(self, cache_val: list[Generation]) -> list[ChatGeneration]:
        # langchain-core calls this on a cache hit only, and marks the hit by setting
        # usage_metadata["total_cost"] to 0; the policyroute entry is marked the same way,
        # else the paid call's cost would be counted again (see langchain_.cache_hits).
        return cache_hits(super()._convert_cached_generations(cache_val))

    # ------------------------------------------------------------------ identity

    @property
    def compiled_policy(self) -> CompiledPolicy:
        """The loaded, validated and compiled policy."""
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = shared.load(self.policy)
        return compiled

    @property
    def executor(self) -> Executor:
        """The executor running this model's calls, with its circuit breakers and latency stats.

        Models built on the same policy (same content hash and, for a path, the same file
        version and ``${VAR}`` values) and the same ``accounting`` object (or none, then per
        working directory) share one with each other and with ``policyroute.completion``
        calls, also when built anew for every call as ``configurable_fields`` does: what one
        learns about a failing or slow deployment, the next routes by. A deep copy has one of
        its own.

        Example:
            >>> a = ChatPolicyRoute(policy="policies/tiered.yaml")  # doctest: +SKIP
            >>> a.executor is ChatPolicyRoute(policy="policies/tiered.yaml").executor
            ... # doctest: +SKIP
            True
        """
        executor: Executor | None = _private(self)["_executor"]
        if executor is None:
            with self._lock:
                if self._executor is None:
                    policy, accounting = self.compiled_policy, self.accounting
                    made = shared.executor(policy, accounting, shared=self._shared)
                    # Known before the executor is published, which other threads read unlocked.
                    self._thresholds = events.install(made.accounting)
                    self._executor = made
                executor = self._executor
        return executor

    def _running(self) -> tuple[Executor, bool]:
        """The executor and whether it reports crossed thresholds to callbacks, asked in this
        order: creating the executor tells the latter."""
        private = _private(self)
        executor: Executor | None = private["_executor"]
        if executor is None:
            executor = self.executor
        return executor, private["_thresholds"]

    @property
    def _llm_type(self) -> str:
        return "policyroute"

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None], /) -> dict[str, Any]:
        # What ``generate`` reports as its ``llm_output``: langchain-openai's summed usage.
        return combined_llm_output(llm_outputs)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return calls.identifying_params(self)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return calls.ls_params(self, stop, kwargs)

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # The schema ``with_structured_output(method="json_mode")`` carries to the executor is
        # policyroute's own, never sent as such: not a call parameter for callbacks to show.
        # The request still has it (``kwargs`` is a copy), and so do cache keys.
        kwargs.pop(SCHEMA_KEY, None)
        if kwargs.pop(ONE_TOOL_CALL_KEY, None):
            # shown as what it asks of a deployment that takes it, as ChatOpenAI shows it
            kwargs.setdefault("parallel_tool_calls", False)
        return super()._get_invocation_params(stop=stop, **kwargs)

    def _resolve_model_profile(self) -> ModelProfile | None:
        return policy_profile(self.compiled_policy)

    # ------------------------------------------------------------------ token counts

    def get_token_ids(self, text: str) -> list[int]:
        """The token ids of ``text`` with litellm's tokenizer for the requested model
        (``gpt-4o``'s when none is set), unless ``custom_get_token_ids`` is given.

        Example:
            >>> llm.get_num_tokens("hello world")  # doctest: +SKIP
            2
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        return tokens.token_ids(self.model, text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The input tokens of ``messages`` and ``tools`` as routing counts ``input_tokens``
        (see :mod:`policyroute.langchain_.tokens`); with ``custom_get_token_ids``, LangChain's
        count with that tokenizer.

        Example:
            >>> trim_messages(history, max_tokens=1000, token_counter=llm)  # doctest: +SKIP
        """
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens_from_messages(messages, tools)
        return tokens.count_messages(self.model, messages, tools)

    # ------------------------------------------------------------------ calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming and kwargs.get("stream", True):
            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        request = calls.build_request(self, messages, stop, run_manager, kwargs, stream=False)
        executor, watching = self._running()
        result = events.complete(executor, request, run_manager, watching=watching)
        return chat_result(result, parse_target(request.response_format))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming and kwargs.get("stream", True):
            return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))
        request = calls.build_request(self, messages, stop, run_manager, kwargs, stream=False)
        executor, watching = self._running()
        target = parse_target(request.response_format)
        if not watching:  # what events.acomplete does then, without its await in between
            return chat_result(await executor.acomplete(request), target)
        result = await events.acomplete(executor, request, run_manager, watching=True)
        return chat_result(result, target)

    def _direct(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_id: Any,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        # Nothing observes the call: the answer is made straight from the executor's result,
        # without the ChatResult that ``answer`` would take it from (see invoke_answer).
        if type(self)._generate is not ChatPolicyRoute._generate or self.streaming:
            return super()._direct(messages, stop, run_id, kwargs)
        request = calls.build_request(self, messages, stop, None, kwargs, stream=False)
        executor, watching = self._running()
        result = events.complete(executor, request, None, watching=watching)
        return invoke_answer(result, run_id, parse_target(request.response_format))

    async def _adirect(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_id: Any,
        kwargs: dict[str, Any],
    ) -> AIMessage:
        if type(self)._agenerate is not ChatPolicyRoute._agenerate or self.streaming:
            return await super()._adirect(messages, stop, run_id, kwargs)
        request = calls.build_request(self, messages, stop, None, kwargs, stream=False)
        executor, watching = self._running()
        target = parse_target(request.response_format)
        if not watching:  # what events.acomplete does then, without its await in between
            return invoke_answer(await executor.acomplete(request), run_id, target)
        result = await events.acomplete(executor, request, None, watching=True)
        return invoke_answer(result, run_id, target)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        config: RunnableConfig | None = kwargs.get(FACTS_KEY)
        usage = openai_options.usage_on_chunks(self.stream_usage, self.model_kwargs, kwargs)
        request = calls.build_request(self, messages, stop, run_manager, kwargs, stream=True)
        executor, watching = self._running()
        yield from stream_chunks(
            self, executor, request, run_manager, config, watching=watching, usage=usage
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        config: RunnableConfig | None = kwargs.get(FACTS_KEY)
        usage = openai_options.usage_on_chunks(self.stream_usage, self.model_kwargs, kwargs)
        request = calls.build_request(self, messages, stop, run_manager, kwargs, stream=True)
        executor, watching = self._running()
        chunks = astream_chunks(
            self, executor, request, run_manager, config, watching=watching, usage=usage
        )
        opened = OpenStream(chunks)
        registry = (config or {}).get(OPEN_STREAMS)
        if isinstance(registry, list):
            registry.append(opened)  # for ``astream`` to close when its caller stops early
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            # An abandoned async generator is not closed by leaving the loop: close it here.
            try:
                await chunks.aclose()
            finally:
                opened.closed.set()

    # ------------------------------------------------------------------ tools & structure

    def bind_tools(
        self,
        tools: Sequence[Tool],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the model on every call of the returned runnable.

        ``tools`` may be LangChain tools, pydantic models, typed functions, or OpenAI or
        Anthropic tool dicts (whose ``cache_control`` is kept). ``tool_choice``: ``"auto"``,
        ``"none"``, ``"any"``/``True`` (must call one), or a tool name (must call that one).

        Example:
            >>> llm.bind_tools([add], tool_choice="add").invoke("2+3?")  # doctest: +SKIP
        """
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(**bound_tools(tools, tool_choice, strict=strict), **kwargs)

    def bind(self, **kwargs: Any) -> _ChatModelBinding:
        """Bind call arguments to every call of the returned runnable. Those a call would be
        refused for (retries, fallbacks, a key or endpoint, a credential header or one that
        cannot be sent) are refused here, where they are written.

        Example:
            >>> llm.bind(temperature=0).invoke("hi")  # doctest: +SKIP
        """
        if kwargs:
            refuse_policy_owned(kwargs)
            if not openai_options.NAMES.isdisjoint(kwargs):
                # ChatOpenAI's client options: refused here if a call would refuse them.
                openai_options.adapt(kwargs)
        return super().bind(**kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type,
        *,
        method: StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """A runnable whose answers are shaped by ``schema`` (pydantic class, TypedDict or
        JSON schema dict).

        ``method``: ``"function_calling"`` forces a call of a tool made from the schema,
        ``"json_schema"`` sends the schema as an OpenAI ``response_format``, ``"json_mode"``
        asks for any JSON object (name the keys in the prompt). With ``include_raw=True`` the
        result is ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}`` and a parsing
        failure is returned, not raised.

        As with ChatOpenAI, ``function_calling`` sends ``parallel_tool_calls=False`` (one call
        of the schema's tool) unless ``parallel_tool_calls`` or ``model_kwargs`` set it; it is
        left out for a deployment that does not take it (litellm would refuse the call
        there). ``json_schema`` with a pydantic class and ``strict=None`` asks for strict
        mode when strict mode can express the class's schema (a ``dict`` field, for one, it
        cannot); ``strict=False`` turns it off.

        Example:
            >>> class Joke(BaseModel):  # doctest: +SKIP
            ...     setup: str
            ...     punchline: str
            >>> joker = llm.with_structured_output(Joke, method="json_schema")  # doctest: +SKIP
            >>> joker.invoke("a joke about cats").punchline  # doctest: +SKIP
        """
        if kwargs:
            raise RequestError(f"unsupported arguments to with_structured_output: {sorted(kwargs)}")
        return structured_runnable(
            self,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            parallel_tool_calls=parallel_tool_calls,
        )


def _private(model: BaseModel) -> dict[str, Any]:
    # pydantic's store of a model's private attributes. ``self._executor`` reaches it through
    # BaseModel.__getattr__, which first asks the attribute's declaration for ``__get__`` (a
    # miss that raises and catches an AttributeError): about 2 us per read, on every call.
    # (Annotated rather than ``cast``: typing.cast is a function call at run time.)
    private: dict[str, Any] = model.__pydantic_private__  # type: ignore[assignment]
    return private


# langchain-core calls ``inspect.signature`` on ``_generate``/``_agenerate`` on every call to see
# whether they take a run manager; a precomputed ``__signature__`` answers that at once instead
# of rebuilding the signature each time (tens of microseconds per call).
for _method in (ChatPolicyRoute._generate, ChatPolicyRoute._agenerate):
    _method.__signature__ = inspect.signature(_method)  # type: ignore[union-attr]
del _method
