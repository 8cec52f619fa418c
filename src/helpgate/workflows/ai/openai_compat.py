"""Triage by any OpenAI-compatible chat-completions endpoint (the official `openai` client): OpenAI, Azure OpenAI,
Ollama, vLLM, LM Studio. How to ask it once; retries and fallback are provider.py's (the client's own are off).

Structured output is asked for as a JSON schema (`response_format` `json_schema`, strict). Many local servers
do not know it: a 400 that names the response format makes this triager ask for plain JSON mode instead, and
then for JSON by instruction alone (the schema written into the system instruction), and it remembers the step
down for its whole life. A 400 naming `temperature` (models that take only the default) drops the temperature
the same way. Whatever the format, the answer is validated against `Triage` (provider.parse_triage). A wait the
server asks for comes from `retry-after-ms` or `Retry-After`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Unpack

import httpx2
import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat
from pydantic import BaseModel

from helpgate.workflows.ai.provider import Calls, Failure, Prompt, Provider, Usage, seconds, short, status_failure

logger = logging.getLogger(__name__)

NO_KEY = "none"  # the client insists on a key; servers on localhost (Ollama, LM Studio) take any
SCHEMA_RULE = "\nAnswer with one JSON object and nothing else. It must fit this JSON schema:\n{schema}\n"


class Format(StrEnum):
    """How the answer's JSON is asked for, strongest first."""

    JSON_SCHEMA = "json_schema"  # structured output: the server holds the model to the schema
    JSON_OBJECT = "json_object"  # JSON mode: valid JSON, the schema in the instruction
    INSTRUCTION = "instruction"  # no response_format: the schema in the instruction only


_WEAKER = {Format.JSON_SCHEMA: Format.JSON_OBJECT, Format.JSON_OBJECT: Format.INSTRUCTION}
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output")
_MAX_RELAXED = 3  # two steps down in format, one temperature dropped


@dataclass(frozen=True)
class _Options:
    format: Format = Format.JSON_SCHEMA
    temperature: bool = True  # send the prompt's temperature


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema as strict structured output wants it: every property required, no others allowed.
    (`Triage` is flat: pydantic inlines its Literal aliases, so there are no $defs to visit.)"""
    schema = model.model_json_schema()
    return schema | {"required": list(schema["properties"]), "additionalProperties": False}


def requested_wait(headers: httpx2.Headers) -> float | None:
    if (value := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        return seconds(value)
    return None


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return body if isinstance(body, str) and body else error.message


def _status_failure(error: openai.APIStatusError) -> Failure:
    code = error.status_code
    reason = f"{type(error).__name__} {code}: {_message(error)}"
    return status_failure(code, reason, requested_wait(error.response.headers))


def _answer(completion: ChatCompletion, usage: Usage) -> str | Failure:
    if completion.usage is not None:
        usage.add(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    if not completion.choices:
        return Failure("an answer with no choices", retryable=True)
    choice = completion.choices[0]
    if choice.message.refusal:
        return Failure(short(f"the model refused: {choice.message.refusal}"), retryable=False)
    text = choice.message.content
    if not text or not text.strip():
        return Failure(f"empty answer (finish reason {choice.finish_reason})", retryable=True)
    return text


class OpenAITriager(Provider):
    """Asks an OpenAI-compatible endpoint, in the strongest JSON format it has shown it takes."""

    source = "openai"

    def __init__(self, api_key: str | None, model: str, *, base_url: str, **calls: Unpack[Calls]) -> None:
        super().__init__(model, **calls)
        self.base_url = base_url
        self._options = _Options()
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY, base_url=base_url, timeout=self.timeout_seconds, max_retries=0
        )

    @property
    def format(self) -> Format:
        """The JSON format asked for now (it only ever steps down)."""
        return self._options.format

    async def aclose(self) -> None:
        await self._client.close()

    async def _complete(self, prompt: Prompt, usage: Usage) -> str | Failure:
        for _ in range(_MAX_RELAXED + 1):
            sent = self._options
            try:
                completion = await self._create(prompt, sent)
            except openai.BadRequestError as error:
                if self._relaxed(error, prompt, sent):
                    continue
                return _status_failure(error)
            except openai.APIStatusError as error:
                return _status_failure(error)
            except openai.APITimeoutError:
                return self.timed_out()
            except openai.APIConnectionError as error:
                cause = error.__cause__ or error
                return Failure(short(f"{type(cause).__name__}: {cause}"), retryable=True, kind="transport")
            return _answer(completion, usage)
        return Failure("the server refused every request format", retryable=False, kind="client_error")

    async def _create(self, prompt: Prompt, options: _Options) -> ChatCompletion:
        system = prompt.system
        response_format: ResponseFormat | openai.Omit = openai.omit
        if prompt.schema is not None:
            schema = strict_schema(prompt.schema)
            match options.format:
                case Format.JSON_SCHEMA:
                    name = prompt.schema.__name__.lower()
                    response_format = {
                        "type": "json_schema",
                        "json_schema": {"name": name, "schema": schema, "strict": True},
                    }
                case Format.JSON_OBJECT:
                    system += SCHEMA_RULE.format(schema=json.dumps(schema))
                    response_format = {"type": "json_object"}
                case Format.INSTRUCTION:
                    system += SCHEMA_RULE.format(schema=json.dumps(schema))
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt.user},  # the ticket, as delimited data (prompt.py)
        ]
        return await self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=prompt.temperature if options.temperature else openai.omit,
            response_format=response_format,
        )

    def _relaxed(self, error: openai.BadRequestError, prompt: Prompt, sent: _Options) -> bool:
        """Whether a 400 rejected an option we can do without: then the next request goes without it, from now
        on (unless a concurrent call already changed the options: then just try again with those)."""
        said = f"{error.param or ''} {_message(error)}".lower()
        if sent.temperature and "temperature" in said:
            relaxed = replace(sent, temperature=False)
        elif prompt.schema is not None and sent.format in _WEAKER and any(word in said for word in _FORMAT_WORDS):
            relaxed = replace(sent, format=_WEAKER[sent.format])
        else:
            return False
        if self._options == sent:
            self._options = relaxed
            logger.warning(
                "triage.openai_relaxed model=%s format=%s temperature=%s reason=%s",
                self.model,
                relaxed.format,
                "sent" if relaxed.temperature else "dropped",
                short(_message(error)),
            )
        return True
