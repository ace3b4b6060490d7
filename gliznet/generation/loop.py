"""The generation loop: ask an LLM for batches of hard records, checkpointing every answer as it arrives.

A run is a sequence of *calls*. Call ``i`` is fully determined by the run seed: its topic, genre,
length, reading level and LLM seed come from ``random.Random(f"{seed}:{i}")``, so the plan never
depends on timing or concurrency. Every finished call, answered or failed, is appended as one JSON
line to ``<out>/checkpoint/calls.jsonl`` (flushed and fsynced). Records are *derived* from that file
by validation, in call order, so a run killed at any moment and started again with the same ``--out``
skips the calls already answered: no accepted record is lost and none is produced twice.

Failed calls are not answers.  A failed call's line says which kind it is (``failure``):

* ``"transport"``: no usable answer arrived (connection, timeout, 5xx, 429 after the retries: the
  provider's ``TRANSPORT_REASONS``).  It settles nothing: a resumed run asks it again (an old line
  without ``failure`` is judged by its ``error``).
* ``"answer"``: an answer arrived and is kept as data (a 4xx refusal, a provider bug); never asked again.

Fail fast.  ``MAX_TRANSPORT_FAILURES`` (5) calls in a row failing in transport mean the endpoint is down:
no new call starts, the calls in flight (at most ``concurrency - 1``) finish and are kept, and the run
stops with ``LLMUnreachable``: one line naming the endpoint and the cause, and "re-run the same command to
resume".  A dead endpoint therefore costs at most ``MAX_TRANSPORT_FAILURES + concurrency - 1`` calls of at
most ``max_retries + 1`` HTTP attempts each.  A provider that knows its endpoint is gone for good
(``EndpointDown``: the embedded server died twice) or that the key was refused (``LLMConfigError``) stops
the run at its first such call, the same way.

Stopped by a signal (SIGINT / SIGTERM, ``gliznet._process``): no new call starts, the answers that arrive within
the grace are appended like any other, the calls still in flight are abandoned (the thread pool does not wait
for them) and ``Interrupted`` carries the counts; a resumed run asks only the calls the checkpoint lacks.

    plan_for(config, i) -> CallSpec           what to ask in call i (gliznet.generation.plan)
    run_call(provider, prompt, spec) -> dict   one checkpoint line (raw answer or failure reason)
    Checkpoint(path)                           append-only call log; tolerates a torn last line (gliznet._io)
    settles(line)                              does this line settle its call (not a transport failure)?
    validate_calls(lines, prompt, limits)      raw answers -> records + counted rejections
    generate_calls(config, checkpoint, ...)    the one loop: a rolling window of calls until enough
                                               records (gliznet.generation.window); calls run on a
                                               pluggable executor (``submit``)
    usage_of(lines)                            LLM usage summed from checkpoint lines
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from gliznet._io import Checkpoint
from gliznet.generation.plan import (
    CallSpec,
    GenerateConfig,
    answer_of,
    plan_for,
    prompt_text,
    render_call,
    request_schema_for,
)
from gliznet.generation.prompts import PromptTemplate, load_prompt
from gliznet.generation.window import call_pool, rolling_window
from gliznet.errors import UserError
from gliznet.llm.provider import (
    TRANSPORT_REASONS,
    EndpointDown,
    LLMCallError,
    LLMConfigError,
    LLMProvider,
    Usage,
)
from gliznet.records import (
    Limits,
    Provenance,
    Record,
    Rejection,
    RejectReason,
    parse_batch,
)

MAX_TRANSPORT_FAILURES = 5  # calls in a row that got no answer: the endpoint is down, stop the run
log = logging.getLogger("gliznet")

# --- one call ----------------------------------------------------------------------------------


def run_call(provider: LLMProvider, prompt: PromptTemplate, spec: CallSpec, config: GenerateConfig) -> dict:
    """Ask for one batch (or bundle). Returns the checkpoint line: the raw answer, or the failure reason."""
    system, user = render_call(prompt, spec, config)
    line: dict = {
        "call": spec.index,
        "spec": asdict(spec),
        "provider": provider.name,
        "model": provider.model,
        "prompt_id": prompt.prompt_id,
        "prompt_hash": prompt.hash,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return ask_into(line, provider, system, user, request_schema_for(config), seed=spec.seed,
                    temperature=config.temperature, max_tokens=config.max_tokens)


def ask_into(line: dict, provider: LLMProvider, system: str, user: str, schema: dict, *, seed: int | None,
             temperature: float, max_tokens: int) -> dict:
    """Ask ``provider`` once and complete the checkpoint ``line`` with the raw answer or the failure (its kind:
    ``transport`` is asked again on resume, ``answer`` stays answered).  A wrong setting or a dead endpoint
    raises: every further call would fail the same way.  Generation and the negative check both use it."""
    try:
        completion = provider.complete_json(system, user, schema, seed=seed, temperature=temperature,
                                            max_tokens=max_tokens)
    except LLMCallError as err:
        line.update(ok=False, error=err.reason, failure="transport" if err.transport else "answer",
                    detail=str(err)[:500], cause=err.cause[:300], attempts=err.attempts,
                    llm_seconds=round(err.seconds, 3))
        return line
    except (LLMConfigError, EndpointDown):
        raise  # a setting is wrong (the key was revoked) or the server is gone: every further call would fail
    except Exception as err:  # noqa: BLE001 - a provider bug must cost one counted call, not the run
        line.update(ok=False, error="unexpected", failure="answer", detail=f"{type(err).__name__}: {err}"[:500],
                    attempts=None)
        return line
    line.update(ok=True, raw=completion.text, model=completion.model or provider.model,
                prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                latency_s=round(completion.latency_s, 3), attempts=completion.attempts,
                llm_seconds=round(completion.seconds, 3))
    return line


# --- from raw answers to records ---------------------------------------------------------------

@dataclass
class Validated:
    records: list[Record]
    rejections: list[Rejection]
    counts: Counter


def settles(line: dict) -> bool:
    """Whether a checkpoint line settles its call: an answer, or a failure that is one (``failure="answer"``);
    not a transport failure, which a resumed run asks again."""
    if line.get("ok"):
        return True
    failure = line.get("failure")
    if failure is None:  # a line written before failures had kinds
        return line.get("error") not in TRANSPORT_REASONS
    return failure != "transport"


def validate_calls(lines: Iterable[dict], prompt_text_for: Callable[[dict], str], limits: Limits) -> Validated:
    """Validate every checkpointed answer, in call order. Failed calls become counted rejections
    (``calls_failed``; of them ``calls_failed_transport``, asked again by a resumed run, and
    ``calls_failed_answer``)."""
    records: list[Record] = []
    rejections: list[Rejection] = []
    counts: Counter = Counter()
    for line in sorted(lines, key=lambda entry: entry["call"]):
        spec = CallSpec(**line["spec"])
        prov = Provenance(
            provider=line["provider"], model=line["model"], prompt_id=line["prompt_id"],
            prompt_hash=line["prompt_hash"], topic=spec.topic, genre=spec.genre, length=spec.length,
            reading_level=spec.reading_level, seed=spec.seed, created_at=line["created_at"],
            seed_id=spec.seed_id, bundle=spec.index if spec.bundle_size > 1 else None, target=spec.target,
        )
        counts["calls"] += 1
        if not line.get("ok"):
            counts["calls_failed"] += 1
            counts["calls_failed_answer" if settles(line) else "calls_failed_transport"] += 1
            rejections.append(Rejection(reason=RejectReason.llm_call_failed,
                                        detail=f"{line.get('error')}: {line.get('detail', '')}"[:500],
                                        raw="", provenance=prov))
            continue
        kept, rejected, fixes = parse_batch(answer_of(line, spec), prov, prompt_text_for(line), limits)
        records.extend(kept)
        rejections.extend(rejected)
        counts.update(fixes)
        counts["prompt_tokens"] += line.get("prompt_tokens") or 0
        counts["completion_tokens"] += line.get("completion_tokens") or 0
    return Validated(records, rejections, counts)


def accepted_in(line: dict, config: GenerateConfig) -> int:
    """How many records of one checkpoint line pass validation (used to decide when to stop)."""
    if not line.get("ok"):
        return 0
    prompt = load_prompt(config.prompt_id)
    blank = Provenance(provider="", model="", prompt_id="", prompt_hash="", topic="", genre="", length="",
                       reading_level="", seed=0, created_at="")
    answer = answer_of(line, CallSpec(**line["spec"]))
    return len(parse_batch(answer, blank, prompt_text(prompt, line, config), config.limits)[0])


# --- the loop ----------------------------------------------------------------------------------

ProgressFn = Callable[[int, int, int], None]  # (accepted, calls_done, call_budget)
Submit = Callable[[CallSpec], Future]  # start one call; the future's result is its checkpoint line
SubmitChunk = Callable[[list[CallSpec]], list[Future]]  # start several calls as one unit; one future per call


@dataclass
class Generated:
    """What one run of the loop leaves: every checkpoint line, old and new, by call index (a call's
    answer, or its last transport failure); ``made``, the lines this run appended, in the order they
    arrived; ``unreadable``, checkpoint lines skipped because they did not decode."""

    lines: dict[int, dict]
    made: list[dict]
    unreadable: int = 0


class LLMUnreachable(UserError, RuntimeError):
    """The run stopped because the LLM endpoint is down; every answer so far is kept (one line: the
    endpoint, the cause, and "re-run the same command to resume")."""


def _stopped(cause: str, why: str, answered: int, checkpoint: Checkpoint) -> LLMUnreachable:
    cause = " ".join(cause.split()).rstrip(".") or "the LLM endpoint failed"
    return LLMUnreachable(f"{cause}{f' ({why})' if why else ''}; the {answered} answered calls are kept in "
                          f"{checkpoint.path}: re-run the same command to resume")


@contextmanager
def thread_pool(provider: LLMProvider, config: GenerateConfig) -> Iterator[Submit]:
    """The default executor: ``config.concurrency`` threads, each running ``run_call`` on ``provider``."""
    prompt = load_prompt(config.prompt_id)
    with call_pool(config.concurrency, "gliznet-call") as pool:  # an interruption does not wait for the calls
        yield lambda spec: pool.submit(run_call, provider, prompt, spec, config)


def generate_calls(config: GenerateConfig, checkpoint: Checkpoint, *, provider: LLMProvider | None = None,
                   submit: Submit | None = None, progress: ProgressFn | None = None,
                   max_transport_failures: int = MAX_TRANSPORT_FAILURES, submit_chunk: SubmitChunk | None = None,
                   chunk: int = 1) -> Generated:
    """The generation loop (the CLI and the Prefect flow both run this one).

    A rolling window: ``config.concurrency`` calls are in flight and a new one starts as soon as one
    finishes, in plan order, skipping calls the checkpoint already holds (resume).  Each answer is
    appended to ``checkpoint`` the moment it arrives.  No call starts once the checkpoint holds
    ``config.records`` accepted records or the call budget is spent; calls in flight still finish.

    Where calls run is ``submit``'s business: ``submit(spec)`` returns a ``concurrent.futures.Future``
    of the call's checkpoint line.  Without it, ``thread_pool(provider, config)``; with both, ``provider``
    only names the outage when the run stops (``provider.outage()``).  ``submit_chunk`` (with ``chunk`` > 1)
    instead starts ``chunk`` calls at a time as one unit of the executor (``rolling_window``'s chunks): a
    Prefect task run costs more than a call to a fast server, so the flow runs several calls per task run.

    Calls the checkpoint holds only as transport failures are asked again; ``max_transport_failures`` in a
    row stop the run with ``LLMUnreachable`` (see the module docstring).
    """
    if max_transport_failures < 1:
        raise ValueError(f"max_transport_failures={max_transport_failures} must be >= 1")
    if submit is None and submit_chunk is None:
        if provider is None:
            raise ValueError("generate_calls needs provider= (calls run in a thread pool) or submit= (an executor)")
        with thread_pool(provider, config) as in_threads:
            return generate_calls(config, checkpoint, provider=provider, submit=in_threads, progress=progress,
                                  max_transport_failures=max_transport_failures)
    report = progress or (lambda accepted, calls, budget: None)
    lines = checkpoint.load(settles)
    if checkpoint.unreadable:
        n = checkpoint.unreadable
        log.warning(f"{n} unreadable checkpoint line{'s' if n != 1 else ''} skipped in {checkpoint.path}; "
                    f"{'their calls' if n != 1 else 'its call'} asked again")
    made: list[dict] = []
    settled = {i for i, line in lines.items() if settles(line)}
    accepted = sum(accepted_in(line, config) for line in lines.values())
    report(accepted, len(settled), config.call_budget)
    down: list[dict] = []  # the transport failures since the last answer

    def arrived(line: dict) -> None:
        nonlocal accepted
        checkpoint.append(line)  # before anything else: a killed run keeps every answer it saw
        lines[line["call"]] = line
        made.append(line)
        if settles(line):
            settled.add(line["call"])
            down.clear()
        else:
            down.append(line)
        accepted += accepted_in(line, config)
        report(accepted, len(settled), config.call_budget)

    todo = (plan_for(config, i) for i in range(config.call_budget) if i not in settled)
    try:
        rolling_window(todo, submit, arrived, concurrency=config.concurrency,
                       keep_going=lambda: accepted < config.records and len(down) < max_transport_failures,
                       chunk=chunk if submit_chunk is not None else 1, submit_chunk=submit_chunk)
    except (LLMConfigError, EndpointDown) as err:
        raise _stopped(str(err), "", len(settled), checkpoint) from None
    if len(down) >= max_transport_failures:
        last = down[-1]
        known = provider.outage() if provider is not None else None
        cause = known or last.get("cause") or last.get("detail") or str(last.get("error"))
        raise _stopped(cause, f"{len(down)} calls in a row got no answer: {last.get('error')}", len(settled),
                       checkpoint)
    return Generated(lines, made, checkpoint.unreadable)


def usage_of(lines: Iterable[dict]) -> dict:
    """LLM usage of the calls behind checkpoint ``lines`` (a run's ``Generated.made``): the manifest's
    ``llm_usage``, the same fields as ``Usage``.  A line marked ``cached`` (an orchestrator's result
    cache answered it) cost no LLM call in this run and is not counted."""
    usage = Usage()
    for line in lines:
        if line.get("cached"):
            continue
        usage.calls += 1
        usage.failed_calls += int(not line.get("ok"))
        usage.retries += max(0, (line.get("attempts") or 1) - 1)
        usage.prompt_tokens += line.get("prompt_tokens") or 0
        usage.completion_tokens += line.get("completion_tokens") or 0
        usage.llm_seconds += line.get("llm_seconds", line.get("latency_s")) or 0.0
    usage.llm_seconds = round(usage.llm_seconds, 3)
    return usage.as_dict()
