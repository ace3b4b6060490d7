"""One interface to every LLM the generator talks to: ``complete_json(system, user, schema)``.

The data generator only ever needs "give me a JSON document that follows this JSON schema".
``LLMProvider`` owns everything around that single request so that the concrete providers
(``groq.py``: Groq cloud or any server speaking its OpenAI-style API, ``ollama.py``: an Ollama
server, ``local.py``: the embedded llama-server, spoken to like Groq) only translate one request and
classify their errors.  This module is the interface only: it imports none of them (construction
by name is ``registry.make_provider``, one level up).

Per call, ``complete_json``:

1. waits for a slot of the provider's concurrency limit (a ``threading.BoundedSemaphore`` held
   for one HTTP attempt, so at most ``concurrency`` requests are ever in flight);
2. sends the request with the provider's timeout;
3. on a *transient* failure — timeout, connection error, HTTP 5xx, HTTP 429 — waits and tries
   again, at most ``max_retries`` times.  The wait is exponential backoff with jitter,
   ``min(max_backoff_s, backoff_s * 2**(n-1)) + U(0, backoff_s)``, except after a 429 that
   carries ``Retry-After``: then exactly that many seconds (capped at ``max_retry_after_s``);
4. never retries any other 4xx (a bad request stays bad);
5. records the call in ``usage`` (thread-safe) and returns a ``Completion`` — or raises
   ``LLMCallError`` with ``.reason`` and ``.attempts``.

``check()`` is the fail-fast probe a CLI runs before spending hours: unreachable host, unknown
model or missing key become one ``LLMConfigError`` line saying what to set.

Transport failures and answers.  A call that failed with one of ``TRANSPORT_REASONS`` (the retried ones:
no usable HTTP answer arrived) never reached the LLM: the generation loop asks it again on resume and
stops the run after several in a row.  A ``bad_request`` is an answer (the server refused this request)
and stays answered.  ``EndpointDown`` is a failure known to hit every further call (the embedded server
died for good): the loop stops at once.  ``outage()`` names what is known to be wrong with the endpoint.

Every provider names its endpoint ``base_url``.  Secrets (``GROQ_API_KEY``) never appear in reprs,
logs or exception messages.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

RETRY_REASONS = ("timeout", "http_5xx", "rate_limited", "connection", "bad_response")
TRANSPORT_REASONS = RETRY_REASONS  # no usable answer arrived: such a call is asked again on resume
CALL_ERROR_REASONS = (*RETRY_REASONS, "bad_request")


# -- errors and records -------------------------------------------------------------------------
class LLMConfigError(ValueError):
    """The provider cannot work as configured; the message is one line saying what to set."""


class LLMCallError(RuntimeError):
    """A call failed for good: ``reason`` in ``CALL_ERROR_REASONS``, after ``attempts`` HTTP attempts
    that took ``seconds`` together."""

    def __init__(self, message: str, reason: str, attempts: int, seconds: float = 0.0, cause: str = ""):
        super().__init__(message)
        self.reason = reason
        self.attempts = attempts
        self.seconds = seconds
        self.cause = cause or message  # the last attempt's failure, e.g. "cannot reach http://...: ..."

    @property
    def transport(self) -> bool:
        """No usable answer arrived (see ``TRANSPORT_REASONS``)."""
        return self.reason in TRANSPORT_REASONS


class EndpointDown(RuntimeError):
    """The endpoint is gone for good (every further call would fail the same way); the message is one
    line naming it and the cause, e.g. ``the embedded llama-server exited with signal 9``."""


class TransientError(Exception):
    """Raised by a provider's ``_request`` for a failure worth retrying (see ``RETRY_REASONS``).

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, reason: str, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        assert reason in RETRY_REASONS, reason
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class BadRequestError(Exception):
    """Raised by a provider's ``_request`` for a 4xx (other than 429): never retried."""


@dataclass
class Completion:
    """One successful call.  ``latency_s``: seconds of the successful HTTP attempt;
    ``attempts``: HTTP attempts this call took (1 = no retry); ``seconds``: all its attempts together."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int
    seconds: float = 0.0


@dataclass
class Usage:
    """Running totals of a provider.  ``calls`` counts every ``complete_json`` call, ``failed_calls``
    the ones that raised; ``retries`` = attempts beyond the first; ``llm_seconds`` = time spent in
    HTTP attempts (successful or not, backoff waits excluded)."""

    calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); ``None`` if absent/garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_from_headers(headers) -> float | None:
    """``retry-after-ms`` (OpenAI/Groq style) wins over ``Retry-After``; headers may be ``None``."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


# -- the provider -------------------------------------------------------------------------------
class LLMProvider(ABC):
    """Base of every provider; subclasses implement ``_request`` and ``check`` and set ``base_url``
    (the endpoint they talk to)."""

    name: str = "llm"
    base_url: str = ""

    def __init__(self, model: str, *, concurrency: int = 4, timeout: float = 120.0, max_retries: int = 4,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_retry_after_s: float = 60.0):
        if concurrency < 1:
            raise LLMConfigError(f"concurrency={concurrency} is invalid: pass --concurrency 1 or more")
        if max_retries < 0:
            raise LLMConfigError(f"max_retries={max_retries} is invalid: pass 0 or more")
        if timeout <= 0:
            raise LLMConfigError(f"timeout={timeout} is invalid: pass a positive number of seconds")
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.usage = Usage()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    # subclass contract ---------------------------------------------------------------------------
    @abstractmethod
    def _request(self, system: str, user: str, schema: dict, *, seed: int | None, temperature: float,
                 max_tokens: int) -> tuple[str, int, int]:
        """One HTTP attempt -> ``(text, prompt_tokens, completion_tokens)``.

        Raise ``TransientError`` for timeouts, connection errors, 5xx and 429 (with its
        Retry-After), ``BadRequestError`` for other 4xx.
        """

    @abstractmethod
    def check(self) -> None:
        """Fail fast: raise ``LLMConfigError`` (one line) if the host, model or key is unusable."""

    def close(self) -> None:
        """Release clients (and, for ``local``, the server)."""

    def outage(self) -> str | None:
        """What is known to be wrong with the endpoint right now, in a few words (``None``: nothing known
        beyond the failed calls themselves)."""
        return None

    # the call ----------------------------------------------------------------------------------
    def complete_json(self, system: str, user: str, schema: dict, *, seed: int | None = None,
                      temperature: float = 0.8, max_tokens: int = 1024) -> Completion:
        """A JSON document following ``schema`` (text, unparsed); see the module docstring."""
        attempts = 0
        spent = 0.0

        def attempt() -> Completion:
            nonlocal attempts, spent
            with self._slots:
                attempts += 1
                start = time.perf_counter()
                try:
                    text, p_tok, c_tok = self._request(system, user, schema, seed=seed, temperature=temperature,
                                                       max_tokens=max_tokens)
                finally:
                    spent += time.perf_counter() - start
            return Completion(text=text, model=self.model, prompt_tokens=p_tok, completion_tokens=c_tok,
                              latency_s=time.perf_counter() - start, attempts=attempts)

        retrying = Retrying(stop=stop_after_attempt(self.max_retries + 1), wait=self._wait,
                            retry=retry_if_exception_type(TransientError), reraise=True, sleep=time.sleep)
        try:
            completion = retrying(attempt)
        except TransientError as e:
            self._record(attempts, spent, failed=True)
            raise LLMCallError(f"{self.name} call failed after {attempts} attempts ({e.reason}): {e.detail}",
                               e.reason, attempts, spent, cause=e.detail) from None
        except BadRequestError as e:
            self._record(attempts, spent, failed=True)
            raise LLMCallError(f"{self.name} rejected the request (not retried): {e}", "bad_request", attempts,
                               spent) from None
        except BaseException:
            self._record(attempts, spent, failed=True)
            raise
        self._record(attempts, spent, failed=False, prompt=completion.prompt_tokens,
                     completion=completion.completion_tokens)
        completion.seconds = spent
        return completion

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After (capped) when the server sent one, else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after_s)
        n = state.attempt_number  # attempts made so far (>= 1)
        return min(self.max_backoff_s, self.backoff_s * 2 ** (n - 1)) + random.uniform(0, self.backoff_s)

    def _record(self, attempts: int, seconds: float, *, failed: bool, prompt: int = 0, completion: int = 0) -> None:
        with self._lock:
            u = self.usage
            u.calls += 1
            u.failed_calls += int(failed)
            u.retries += max(0, attempts - 1)
            u.prompt_tokens += prompt
            u.completion_tokens += completion
            u.llm_seconds += seconds

    # context manager ---------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, concurrency={self.concurrency})"


def schema_instruction(schema: dict) -> str:
    """System-prompt suffix for servers that only offer plain JSON mode (no schema enforcement)."""
    import json

    return ("\n\nAnswer with one JSON object only, no prose, that validates against this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False))


__all__ = [
    "BadRequestError", "Completion", "EndpointDown", "LLMCallError", "LLMConfigError", "LLMProvider", "TransientError", "Usage",
    "parse_retry_after", "retry_after_from_headers", "schema_instruction",
]
