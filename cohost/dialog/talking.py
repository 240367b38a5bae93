"""Talking points for the streamer: from the LLM when one is configured, else from catalog templates.

Whatever happens to the LLM — disabled, unreachable, slow, failing — the streamer gets talking points:
the template version is the fallback, and it states only what the catalog states.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import Config
from .runner import TalkingPoints

log = logging.getLogger(__name__)


def make_talking_points(config: Config) -> tuple[TalkingPoints, Any]:
    """Return (generate, client). ``client`` is None without an LLM; close it with ``await client.aclose()``."""
    from .llm import LLMClient, LLMError, fallback_talking_points, talking_points

    if not config.llm.enabled:
        async def from_catalog(product: dict[str, Any], questions: list[str]) -> list[str]:
            return fallback_talking_points(product, questions)

        return from_catalog, None

    client = LLMClient(config.llm)  # the packaged prompt templates (cohost/prompts)

    async def from_llm(product: dict[str, Any], questions: list[str]) -> list[str]:
        try:
            points = await talking_points(client, product=product, questions=questions)
        except LLMError as e:
            log.warning("LLM unavailable (%s); using catalog talking points", e)
            points = []
        return points or fallback_talking_points(product, questions)

    return from_llm, client
