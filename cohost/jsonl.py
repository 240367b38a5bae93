"""Reading JSON-lines files (cases, recordings) with errors that name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import CohostError


def read_objects(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """Every non-blank line as (line number, JSON object). ``what`` names the file in errors."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise CohostError(f"{what} not found: {path}") from None
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CohostError(f"{path}: line {n}: not JSON: {e}") from None
        if not isinstance(obj, dict):
            raise CohostError(f"{path}: line {n}: expected a JSON object")
        rows.append((n, obj))
    return rows
