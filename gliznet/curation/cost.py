"""What a run cost: tokens in and out (per call and per run) and an estimated price in US dollars.

    PRICES_AS_OF, PRICE_TABLE         the dated list prices (USD per million tokens, input, output) of the
                                      Groq models this repository names; checked by hand, not fetched
    parse_price(text) -> (in, out)    ``--price-per-mtok IN,OUT`` (``none``: the table)
    run_cost(usage, provider, model, price) -> dict
                                      the manifest's ``cost``: tokens, tokens per call, price used and its
                                      source, ``usd`` (``None`` when no price is known: tokens only, said so)
    cost_line(cost) -> str            the one line the CLI, the card and the flow's artifact print

``usage`` is ``gliznet.generation.loop.usage_of`` of the calls *this run* made (a resumed run counts only
its new calls; the checkpoint holds every call's tokens, ``prompt_tokens`` / ``completion_tokens`` per line).
A price given per run (``--price-per-mtok``) wins over the table; a model the table does not list (every
self-hosted one: ``local``, ``ollama``, ``openai`` against vLLM) gets tokens only unless a price is given.
"""

from __future__ import annotations

from gliznet.errors import UserError

PRICES_AS_OF = "2025-08-01"
PRICE_SOURCE = f"Groq list prices (groq.com/pricing, as of {PRICES_AS_OF}; check before relying on them)"
PRICE_TABLE: dict[tuple[str, str], tuple[float, float]] = {  # (provider, model) -> USD per 1M tokens (in, out)
    ("groq", "llama-3.1-8b-instant"): (0.05, 0.08),
    ("groq", "llama-3.3-70b-versatile"): (0.59, 0.79),
    ("groq", "openai/gpt-oss-20b"): (0.10, 0.50),
    ("groq", "openai/gpt-oss-120b"): (0.15, 0.75),
    ("groq", "qwen/qwen3-32b"): (0.29, 0.59),
    ("groq", "gemma2-9b-it"): (0.20, 0.20),
}


def parse_price(text: str | None) -> tuple[float, float] | None:
    """``"0.05,0.08"`` -> ``(0.05, 0.08)`` USD per million input / output tokens; ``None`` / ``none`` -> None."""
    if text is None or str(text).strip().lower() == "none":
        return None
    parts = str(text).split(",")
    try:
        price = tuple(float(p) for p in parts)
    except ValueError:
        price = ()
    if len(price) != 2 or min(price) < 0:
        raise UserError(f"--price-per-mtok {text!r} is not two prices: pass IN,OUT in USD per million tokens, "
                        "e.g. 0.05,0.08 (or none for the dated table)")
    return price  # type: ignore[return-value]


def price_for(provider: str, model: str | None, override: tuple[float, float] | None = None
              ) -> tuple[tuple[float, float] | None, str]:
    """The price to use and where it came from (``per-run override``, the table, or ``unknown``)."""
    if override is not None:
        return tuple(override), "per-run override (--price-per-mtok)"  # type: ignore[return-value]
    listed = PRICE_TABLE.get((provider, model or ""))
    if listed is not None:
        return listed, PRICE_SOURCE
    return None, f"unknown: no price for {provider}/{model or 'default'} (pass --price-per-mtok IN,OUT)"


def run_cost(usage: dict | None, provider: str, model: str | None,
             price: tuple[float, float] | None = None) -> dict:
    """The manifest's ``cost`` entry (see the module docstring)."""
    usage = usage or {}
    calls = int(usage.get("calls", 0))
    tokens_in, tokens_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    per_mtok, source = price_for(provider, model, price)
    usd = None
    if per_mtok is not None:
        usd = round(tokens_in / 1e6 * per_mtok[0] + tokens_out / 1e6 * per_mtok[1], 6)
    return {
        "provider": provider,
        "model": model,
        "calls": calls,
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "prompt_tokens_per_call": round(tokens_in / calls, 1) if calls else 0.0,
        "completion_tokens_per_call": round(tokens_out / calls, 1) if calls else 0.0,
        "price_per_mtok": None if per_mtok is None else {"input": per_mtok[0], "output": per_mtok[1]},
        "price_source": source,
        "usd": usd,
    }


def cost_line(cost: dict) -> str:
    """``cost: 12 calls, 9,310 tokens in / 2,048 out (776/171 per call); est. $0.000629 (source)``."""
    head = (f"cost: {cost['calls']} calls, {cost['prompt_tokens']:,} tokens in / {cost['completion_tokens']:,} out "
            f"({cost['prompt_tokens_per_call']:g}/{cost['completion_tokens_per_call']:g} per call)")
    if cost.get("usd") is None:
        return f"{head}; price {cost['price_source']}: tokens only"
    return f"{head}; est. ${cost['usd']:.6f} ({cost['price_source']})"


__all__ = ["PRICES_AS_OF", "PRICE_TABLE", "cost_line", "parse_price", "price_for", "run_cost"]
