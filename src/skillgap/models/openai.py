"""The `openai` backend: any OpenAI-compatible chat endpoint, with bounded concurrency and retries.

Transient failures (connection refused, timeouts, 429, 5xx) are retried with exponential backoff;
after the last try the error names the endpoint and what to check. A 4xx other than 429 is
not retried: it will not get better.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from skillgap.errors import BackendError, ConfigError
from skillgap.items import Message
from skillgap.models import Generation, ModelConfig

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
        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=os.environ.get(cfg.api_key_env) or "EMPTY",
                                    max_retries=0, timeout=cfg.timeout)

    def _one(self, chat: list[Message], max_new_tokens: int, temperature: float) -> Generation:
        delay = 1.0
        for attempt in range(self.cfg.max_retries + 1):
            try:
                r = self.client.chat.completions.create(model=self.model, messages=chat, temperature=temperature,
                                                        max_tokens=max_new_tokens)
                text = r.choices[0].message.content or ""
                n = r.usage.completion_tokens if r.usage else len(text.split())
                return Generation(text, n)
            except TRANSIENT as e:
                if attempt == self.cfg.max_retries:
                    raise BackendError(f"{self.cfg.base_url or 'api.openai.com'}: {type(e).__name__} after "
                                       f"{attempt + 1} tries ({e}). Is the server up and the URL right?") from None
                time.sleep(delay)
                delay *= 2
            except openai.APIStatusError as e:
                raise BackendError(f"{self.cfg.base_url or 'api.openai.com'} answered {e.status_code}: "
                                   f"{e.message}. Check --model and the API key.") from None
        raise AssertionError("unreachable")

    def generate(self, chats: list[list[Message]], max_new_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(lambda c: self._one(c, max_new_tokens, temperature), chats))
