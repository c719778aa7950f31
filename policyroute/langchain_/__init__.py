"""Parts of the LangChain adapter kept apart from :mod:`policyroute.langchain`: the model
profile of a policy, structured output, and budget events."""
