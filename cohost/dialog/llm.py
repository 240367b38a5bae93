"""An optional LLM for the streamer's talking points and for rephrasing catalog answers.

Any OpenAI-compatible server works (OpenAI, DeepSeek, Qwen/DashScope, Ollama, vLLM, llama.cpp): set
``llm.base_url`` and ``llm.model``; the key comes from the environment variable named by
``llm.api_key_env``, never from config.yaml.

The LLM is never on the critical path. Every generation has a first-token deadline and a whole-generation
deadline; when it is late, fails or is disabled, callers fall back to template text built from the catalog
(:func:`fallback_talking_points`, or the plain catalog answer for replies). What it writes is checked
before use by the one gate (cohost.gate): lines with an advertising-law word, or with a number or promise
the catalog facts do not state, are dropped, so the model cannot invent a price; the room gates what it
shows once more.

Viewer text is data, not instructions: prompts put it inside delimited blocks (``<viewer_questions>``) and
tell the model to ignore instructions found there; :func:`render_prompt` substitutes values in one pass,
so braces in a danmaku cannot reach other placeholders, and a danmaku cannot close the block early.

Cancelling a generation (the task is cancelled, or the consumer stops iterating and closes the iterator)
closes the HTTP stream, so the server stops generating. Iterate :meth:`LLMClient.stream` under
``contextlib.aclosing`` when you may stop early.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import openai

from ..config import LLMConfig, packaged
from ..errors import CohostError, ConfigError
from ..gate import Gate
from ..understand.streamer import already_said

log = logging.getLogger(__name__)

# The advertising-law words the prompts name to the model (the gate checks the whole list, gate/ad_law.txt).
BANNED_WORDS: tuple[str, ...] = ("最", "第一", "顶级", "国家级", "全网最低", "绝对", "100%")

_GATE = Gate()
PROMPTS_DIR = packaged("prompts")  # cohost/prompts/*.txt, shipped as package data
USER_SEPARATOR = "---user---"
_PLACEHOLDER_KEY = "no-key"  # local servers (Ollama, vLLM, llama.cpp) need no key, but the SDK wants one


class LLMError(CohostError):
    """The LLM did not produce an answer in time or refused the request.

    ``retryable`` is True for problems that may go away on their own (connection refused, timeout,
    429, 5xx) and False for ones that need the operator (wrong key, unknown model, bad request).
    ``status`` is the HTTP status when the server answered with one.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


def _classify(exc: openai.OpenAIError, config: LLMConfig) -> LLMError:
    """Turn an openai exception into an LLMError with a message for the operator."""
    where = f"LLM server {config.base_url} (model {config.model!r})"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in (408, 409, 425, 429) or status >= 500
        detail = re.sub(r"^Error code: \d+\s*-?\s*", "", exc.message).rstrip("。. ")
        hint = ""
        if status in (401, 403):
            hint = f"check the API key in the environment variable {config.api_key_env}"
        elif status == 404:
            hint = "check llm.model, and llm.base_url, which usually ends in /v1"
        elif status == 429:
            hint = "rate limited or out of quota"
        text = f"{where} answered HTTP {status}" + (f": {detail}" if detail else "") + (f" ({hint})" if hint else "")
        return LLMError(text, retryable=retryable, status=status)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError(f"{where} sent a response that is not OpenAI-compatible: {exc.message}", retryable=False)
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(f"{where} timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause else ""
        return LLMError(f"cannot reach {where}{detail}", retryable=True)
    if isinstance(exc, openai.APIError):  # an error event in the middle of a stream
        return LLMError(f"{where} failed while generating: {exc.message}", retryable=True)
    return LLMError(f"{where}: {exc}", retryable=False)


class LLMClient:
    """Streams chat completions from an OpenAI-compatible server under cohost's deadlines.

    Create it once, use it from one event loop, and ``await aclose()`` (or ``async with``) at the end.
    """

    def __init__(self, config: LLMConfig, *, prompts_dir: Path = PROMPTS_DIR):
        self.config = config
        self.prompts_dir = Path(prompts_dir)
        api_key = os.environ.get(config.api_key_env) or _PLACEHOLDER_KEY
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=config.base_url,
            # cohost enforces its own deadlines below; this is a backstop for reads between them.
            timeout=config.timeout_s,
            # No hidden retries: a retry would blow the deadline. Callers decide with LLMError.retryable.
            max_retries=0,
        )

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    async def stream(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        """Yield the text deltas of one chat completion as they arrive.

        Raises LLMError(retryable=True) when no text arrives within ``first_token_timeout_s`` or the
        generation is not finished within ``timeout_s``; deltas already yielded stay valid. When the
        consumer closes the iterator or its task is cancelled, the HTTP stream is closed (the server
        sees the disconnect) and the cancellation propagates.
        """
        cfg = self.config
        if not cfg.enabled:
            raise LLMError("the LLM is disabled (llm.enabled is false)", retryable=False)
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + cfg.timeout_s
        first_deadline = min(start + cfg.first_token_timeout_s, deadline)
        response: openai.AsyncStream[Any] | None = None
        got_text = False
        try:
            try:
                async with asyncio.timeout_at(first_deadline):
                    response = await self._client.chat.completions.create(
                        model=cfg.model,
                        messages=messages,  # type: ignore[arg-type]
                        stream=True,
                        max_tokens=cfg.max_tokens,
                        temperature=cfg.temperature,
                    )
            except TimeoutError:
                raise self._late("no response", cfg.first_token_timeout_s) from None
            while True:
                try:
                    async with asyncio.timeout_at(deadline if got_text else first_deadline):
                        chunk = await anext(response)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if got_text:
                        raise self._late("generation not finished", cfg.timeout_s) from None
                    raise self._late("no first token", cfg.first_token_timeout_s) from None
                text = _delta_text(chunk)
                if text:
                    got_text = True
                    yield text
        except openai.OpenAIError as e:
            raise _classify(e, cfg) from e
        except json.JSONDecodeError as e:
            raise LLMError(f"LLM server {cfg.base_url} sent a malformed stream: {e}", retryable=False) from e
        finally:
            if response is not None:
                # Shielded so that a second cancellation cannot leave the socket open.
                with anyio.CancelScope(shield=True):
                    await response.close()

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        """The whole text of one chat completion (streamed, under the same deadlines)."""
        async with aclosing(self.stream(messages)) as deltas:
            return "".join([d async for d in deltas])

    async def list_models(self) -> list[str]:
        """Model ids the server offers (GET /models); a cheap check that base_url and the key work."""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                page = await self._client.models.list()
        except TimeoutError:
            raise self._late("no answer to GET /models", self.config.timeout_s) from None
        except openai.OpenAIError as e:
            raise _classify(e, self.config) from e
        return [m.id for m in page.data]

    def _late(self, what: str, seconds: float) -> LLMError:
        return LLMError(
            f"LLM server {self.config.base_url} (model {self.config.model!r}): {what} within {seconds:g}s",
            retryable=True,
        )


def _delta_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    if not choices:  # usage-only chunks
        return ""
    delta = getattr(choices[0], "delta", None)
    return (getattr(delta, "content", None) or "") if delta is not None else ""


# ---------------------------------------------------------------------------------------------------------
# Prompts

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TAG = re.compile(r"</?([A-Za-z_][A-Za-z0-9_]*)>")
_PROMPT_NAME = re.compile(r"^[a-z0-9_]+$")


def render_prompt(name: str, *, prompts_dir: Path | None = None, **values: Any) -> list[dict[str, str]]:
    """Load cohost/prompts/<name>.txt and fill its {placeholders}: [{"role": "system"}, {"role": "user"}].

    The file holds the system part, a line ``---user---``, then the user part. ``{{`` and ``}}`` are
    literal braces. Values are substituted in a single pass and never re-read, so braces in viewer
    text stay literal; a delimiter tag the template uses (``</viewer_questions>``) is defused in values.
    """
    if not _PROMPT_NAME.match(name):
        raise ConfigError(f"invalid prompt name {name!r}: use lower-case letters, digits and _")
    path = (prompts_dir or PROMPTS_DIR) / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"prompt template not found: {path}") from e
    lines = text.splitlines()
    seps = [i for i, line in enumerate(lines) if line.strip() == USER_SEPARATOR]
    if len(seps) != 1:
        raise ConfigError(f"{path}: needs exactly one line {USER_SEPARATOR!r} between the system and user parts")
    system = "\n".join(lines[: seps[0]]).strip()
    user = "\n".join(lines[seps[0] + 1 :]).strip()

    tags = sorted(set(_TAG.findall(text)))
    defuse = re.compile(r"<\s*/?\s*(?:" + "|".join(map(re.escape, tags)) + r")\s*>", re.I) if tags else None

    def clean(value: Any) -> str:
        s = str(value)
        if defuse is not None:
            s = defuse.sub(lambda m: m.group(0).replace("<", "").replace(">", ""), s)
        return s

    missing: set[str] = set()

    def fill(part: str) -> str:
        def sub(m: re.Match[str]) -> str:
            token = m.group(0)
            if token == "{{":
                return "{"
            if token == "}}":
                return "}"
            key = m.group(1)
            if key not in values:
                missing.add(key)
                return token
            return clean(values[key])

        return _PLACEHOLDER.sub(sub, part)

    messages = [{"role": "system", "content": fill(system)}, {"role": "user", "content": fill(user)}]
    if missing:
        raise ConfigError(f"{path}: no value for placeholder(s) {sorted(missing)}")
    return messages


# ---------------------------------------------------------------------------------------------------------
# Talking points

MAX_QUESTIONS = 8
MAX_QUESTION_CHARS = 80
MAX_POINT_CHARS = 60

_MARKER = re.compile(
    r"^\s*(?:"
    r"[-*+•·●○▪■◆►–—]+"  # bullets
    r"|[(（]?\d{1,2}\s*(?:[.．](?!\d)|[、)）:：])"  # 1.  1、  1)  (1)  but not 12.5
    r"|[(（]\d{1,2}[)）]"
    r"|[一二三四五六七八九十]\s*[、.．:：]"  # 一、
    r"|第\s*[一二三四五六七八九十\d]+\s*[条点]\s*[:：、.．]?"  # 第一条：
    r"|(?:要点|口播|提词)\s*\d*\s*[:：]"  # 要点1：
    r")\s*"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def price_text(price: Any) -> str | None:
    """159.0 -> "159", 12.5 -> "12.5", "99元" -> "99"; None when there is no price."""
    if price is None or isinstance(price, bool):
        return None
    if isinstance(price, int | float):
        return f"{float(price):.2f}".rstrip("0").rstrip(".")
    s = str(price).strip().removesuffix("元").strip()
    return s or None


def _facts_text(product: dict[str, Any]) -> str:
    name = str(product.get("name") or "").strip() or "（未命名商品）"
    lines = [f"商品名：{name}"]
    price = price_text(product.get("price"))
    lines.append(f"直播间价：{price}元" if price else "价格：资料未提供（不要提价格）")
    specs = product.get("specs") or {}
    if specs:
        lines.append("规格：")
        lines += [f"- {k}：{v}" for k, v in specs.items()]
    points = [str(p).strip() for p in product.get("selling_points") or [] if str(p).strip()]
    if points:
        lines.append("卖点：")
        lines += [f"- {p}" for p in points]
    return "\n".join(lines)


def _questions_text(questions: Sequence[str]) -> str:
    cleaned = []
    for q in questions[:MAX_QUESTIONS]:
        q = " ".join(str(q).split())  # one line each: a danmaku cannot fake the block's layout
        if q:
            cleaned.append("- " + (q[:MAX_QUESTION_CHARS] + "…" if len(q) > MAX_QUESTION_CHARS else q))
    return "\n".join(cleaned) if cleaned else "（暂无）"


def _strip_line(line: str) -> tuple[str, bool]:
    """Remove numbering, bullets, markdown emphasis and quotes; report whether a marker was there."""
    s = line.strip().replace("**", "").replace("__", "")
    m = _MARKER.match(s)
    marked = m is not None
    if m is not None:
        s = s[m.end() :]
    s = s.strip().strip("\"'“”‘’「」『』").strip()
    return s, marked


def parse_points(text: str, *, facts: str = "", n: int = 3, gate: Gate | None = None) -> list[str]:
    """Up to n talking points from model output: numbering and bullets stripped, unsafe lines dropped.

    When some lines carry numbering or bullets, only those count (a preamble such as "好的，以下是…"
    is skipped). Lines longer than MAX_POINT_CHARS, or that the gate does not pass as they are (an
    advertising-law word, a number or promise the facts do not state), are dropped: a model that writes
    one invented claim is not trusted with the rest of that line.
    """
    gate = gate or _GATE
    marked: list[str] = []
    plain: list[str] = []
    for raw in text.splitlines():
        s, has_marker = _strip_line(raw)
        if not s or s.endswith((":", "：")):
            continue
        (marked if has_marker else plain).append(s)
    out: list[str] = []
    for s in marked or plain:
        why = None
        if len(s) > MAX_POINT_CHARS:
            why = "too long"
        elif (verdict := gate.check(s, facts)).action != "pass":
            why = verdict.explain()
        if why:
            log.info("talking point dropped (%s): %s", why, s)
            continue
        if s not in out:
            out.append(s)
        if len(out) >= n:
            break
    return out


async def talking_points(
    client: LLMClient | None, *, product: dict[str, Any], questions: list[str], n: int = 3
) -> list[str]:
    """n short talking points about the product on stage; the template version when the LLM cannot help.

    Falls back to :func:`fallback_talking_points` when the client is None or disabled, when the LLM
    fails or is late, or when none of its lines pass the checks. Cancellation propagates.
    """
    if client is None or not client.config.enabled:
        return fallback_talking_points(product, questions, n)
    facts = _facts_text(product)
    said = [" ".join(str(line).split())[:MAX_QUESTION_CHARS] for line in product.get("recently_said") or []]
    messages = render_prompt(
        "talking_points", prompts_dir=client.prompts_dir, n=n, facts=facts, questions=_questions_text(questions),
        said="\n".join(f"- {line}" for line in said[-MAX_QUESTIONS:] if line) or "（暂无）",
    )
    text = ""
    try:
        async with aclosing(client.stream(messages)) as deltas:
            async for delta in deltas:
                text += delta
                # Stop generating once n numbered lines are complete: the rest would be thrown away.
                if "\n" in delta:
                    done = text[: text.rfind("\n") + 1]
                    if _has_marked(done, n) and len(parse_points(done, facts=facts, n=n)) >= n:
                        break
    except LLMError as e:
        # Keep the complete lines of a late or broken generation; a cut-off last line is dropped.
        points = parse_points(text[: text.rfind("\n") + 1], facts=facts, n=n)
        log.warning("LLM talking points failed, %s: %s", "using partial output" if points else "using template", e)
        if points:
            return points
        return fallback_talking_points(product, questions, n)
    points = parse_points(text, facts=facts, n=n)
    if not points:
        log.warning("LLM talking points unusable, using template: %r", text[:200])
        return fallback_talking_points(product, questions, n)
    return points


def _has_marked(text: str, n: int) -> bool:
    return sum(1 for line in text.splitlines() if _strip_line(line)[1]) >= n


_PRICE_ASKS = ("多少钱", "价格", "价钱", "几块", "几元", "什么价", "贵", "便宜")


def fallback_talking_points(product: dict[str, Any], questions: list[str], n: int = 3) -> list[str]:
    """Talking points from the catalog alone, in Chinese: what viewers ask first, then selling points.

    Viewer text is only matched against spec names and price words, never repeated. Lines the streamer
    said in other words a moment ago (``product["recently_said"]``) come last.
    """
    name = str(product.get("name") or "").strip() or "这款"
    price = price_text(product.get("price"))
    specs = {str(k).strip(): str(v).strip() for k, v in (product.get("specs") or {}).items() if str(v).strip()}
    points = [str(p).strip() for p in product.get("selling_points") or [] if str(p).strip()]
    asked = " ".join(str(q) for q in questions)

    lines: list[str] = []
    if price and any(w in asked for w in _PRICE_ASKS):
        lines.append(f"好多朋友在问价格：{name}直播间价{price}元")
    answered = [k for k in specs if k and k in asked]
    for k in answered:
        lines.append(f"好多朋友在问{k}：{specs[k]}")
    for i, p in enumerate(points):
        lines.append(f"{name}：{p}" if i == 0 and name not in p else p)
    rest = [f"{k}{specs[k]}" if k.endswith(("：", ":")) else f"{k}：{specs[k]}" for k in specs if k not in answered]
    if rest:
        lines.append("规格给大家说一下，" + "；".join(rest[:3]))
    if price and not any("价格" in line for line in lines):
        lines.append(f"{name}直播间价{price}元")
    if not lines:
        lines.append(f"现在讲解的是{name}，有问题可以打在公屏上")
    said = [str(s) for s in product.get("recently_said") or []]
    out: list[str] = []
    for line in sorted(lines, key=lambda line: already_said(line, said)):  # stable: order kept otherwise
        if line not in out:
            out.append(line)
    return out[:n]


# ---------------------------------------------------------------------------------------------------------
# Rephrasing


async def rephrase(client: LLMClient | None, *, answer: str, question: str, max_chars: int) -> str | None:
    """The catalog answer rephrased as one friendly chat reply of at most max_chars, or None.

    None means "send the catalog answer as it is": the LLM is off, failed, was late, or wrote something
    too long, with a banned word, or with a number or promise the answer does not hold.
    """
    if client is None or not client.config.enabled:
        return None
    messages = render_prompt(
        "rephrase", prompts_dir=client.prompts_dir, answer=answer, question=" ".join(question.split()),
        max_chars=max_chars,
    )
    try:
        text = await client.complete(messages)
    except LLMError as e:
        log.warning("LLM rephrase failed, sending the catalog answer: %s", e)
        return None
    lines = [s for s in (_strip_line(line)[0] for line in text.splitlines()) if s]
    reply = lines[0] if len(lines) == 1 else ""
    why = None
    if not reply:
        why = "not exactly one line"
    elif len(reply) > max_chars:
        why = f"longer than {max_chars} characters"
    elif (verdict := _GATE.check(reply, answer)).action != "pass":
        why = verdict.explain()
    if why:
        log.info("LLM rephrase rejected (%s): %r", why, text[:200])
        return None
    return reply
