"""A scripted chat model that issues tool calls, for the LLM path without a network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult

from chat.tools import ToolCall


class ScriptedChatModel(FakeMessagesListChatModel):
    """Answers with ``responses`` in order; records what it was sent and which tools were bound."""

    seen: list[list[BaseMessage]] = []
    bound_tools: list[Any] = []
    fail_with: Exception | None = None

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        self.bound_tools = list(tools)
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        if self.fail_with is not None:
            raise self.fail_with
        return super()._generate(messages, *args, **kwargs)


def tool_call(
    name: str, args: dict[str, Any], call_id: str = "call_1", tokens: tuple[int, int] = (300, 20)
) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}],
        usage_metadata={"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)},
    )


def final(text: str, tokens: tuple[int, int] = (700, 180)) -> AIMessage:
    return AIMessage(
        content=text,
        usage_metadata={"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)},
    )


def scripted(*responses: AIMessage, fail_with: Exception | None = None) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), seen=[], bound_tools=[], fail_with=fail_with)


def result_of(call: ToolCall) -> Any:
    """A successful tool call's JSON result, for a test to index into (its shape is what the test asserts)."""
    assert call.result is not None, call.error
    return call.result
