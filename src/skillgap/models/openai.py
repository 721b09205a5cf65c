"""The `openai` backend: any OpenAI-compatible chat endpoint, with bounded concurrency and retries.

Transient failures (connection refused, timeouts, 429, 5xx) are retried with exponential backoff;
after the last try the error names the endpoint and what to check. A 4xx other than 429 is
not retried: it will not get better. A response that is not a chat completion (a proxy's HTML
page, an empty `choices`) is an error naming the endpoint, never an empty answer. A reply the token
limit cut off (`finish_reason` "length") is marked `truncated`, and graded as such (`grade_all`).

A JSON schema is sent as `response_format`: first the OpenAI form (`json_schema`, which vLLM and
hosted APIs take); a server that rejects it (400/422, or llama.cpp's 500 naming response_format)
gets llama.cpp's form (`json_object` with `schema`) and, failing that, no constraint; the form that
worked is remembered.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from skillgap.errors import BackendError, ConfigError
from skillgap.items import Message
from skillgap.models.config import Generation, ModelConfig

TRANSIENT = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
             openai.InternalServerError)


class OpenAIBackend:
    def __init__(self, cfg: ModelConfig, batch_size: int = 16):
        if not cfg.base_url and not os.environ.get("OPENAI_BASE_URL") and not os.environ.get(cfg.api_key_env):
            raise ConfigError("The openai backend needs --base-url (e.g. http://localhost:8000/v1) "
                              f"or ${cfg.api_key_env} for api.openai.com.")
        self.cfg = cfg
        self.model = cfg.model.removeprefix("openai/")
        self.identity = f"openai:{self.model}@{cfg.base_url}"
        # One generate() call gets several requests per worker so the pool stays busy.
        self.batch_size = max(batch_size, cfg.concurrency * 2)
        self.formats = ["json_schema", "json_object", "none"]  # response_format forms still worth trying
        self.lock = threading.Lock()
        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env) or "EMPTY",
                                    max_retries=0, timeout=cfg.timeout)

    def _response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        form = self.formats[0]
        if schema is None or form == "none":
            return None
        if form == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        return {"type": "json_object", "schema": schema}

    def _drop(self, fmt: dict[str, Any]) -> bool:
        """This server rejected that response_format: use the next form from now on."""
        with self.lock:
            if len(self.formats) > 1 and self.formats[0] == fmt["type"]:
                self.formats.pop(0)
            return fmt["type"] not in self.formats

    def _one(self, chat: list[Message], max_new_tokens: int, temperature: float, seed: int,
             schema: dict[str, Any] | None) -> Generation:
        where = self.cfg.base_url or "api.openai.com"
        delay = 1.0
        attempt = 0
        while True:
            fmt = self._response_format(schema)
            try:
                kw: dict[str, Any] = {"response_format": fmt} if fmt else {}
                if temperature > 0:
                    kw["seed"] = seed
                r = self.client.chat.completions.create(model=self.model, messages=chat, temperature=temperature,
                                                        max_tokens=max_new_tokens, **kw)
            except TRANSIENT as e:
                if fmt and "response_format" in str(e) and self._drop(fmt):
                    continue  # llama.cpp's server answers 500 to a response_format it does not know
                if attempt == self.cfg.max_retries:
                    hint = " Raise --timeout for a slow server." if isinstance(e, openai.APITimeoutError) else ""
                    raise BackendError(f"{where}: {type(e).__name__} after {attempt + 1} tries ({e}). "
                                       f"Is the server up and the URL right?{hint}") from None
                time.sleep(delay)
                delay *= 2
                attempt += 1
                continue
            except openai.APIStatusError as e:
                if fmt and e.status_code in (400, 422) and self._drop(fmt):
                    continue
                raise BackendError(f"{where} answered {e.status_code}: {e.message}. "
                                   "Check --model and the API key.") from None
            except (openai.APIResponseValidationError, ValueError) as e:  # ValueError: a body that is not JSON
                raise BackendError(f"{where} returned something that is not a chat completion "
                                   f"({type(e).__name__}: {e}). Is this an OpenAI-compatible /v1 endpoint?") from None
            try:
                text = r.choices[0].message.content or ""  # None: nothing written before the end (or the limit)
                truncated = r.choices[0].finish_reason == "length"  # the token limit, not the model, ended it
            except (AttributeError, IndexError, TypeError):
                raise BackendError(f"{where} returned a response without choices[0].message: "
                                   f"{str(r)[:200]!r}. Is this an OpenAI-compatible /v1 endpoint?") from None
            usage = getattr(r, "usage", None)
            n = usage.completion_tokens if usage and usage.completion_tokens is not None else len(text.split())
            return Generation(text, n, truncated)

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0, schema: dict[str, Any] | None = None) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(lambda c: self._one(c, max_new_tokens, temperature, seed, schema), chats))
