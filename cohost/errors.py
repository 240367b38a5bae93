"""Errors cohost raises on purpose.

    CohostError
    ├── ConfigError          config.yaml is missing, malformed or has unknown keys
    ├── CatalogError         a catalog or FAQ file is invalid; carries every problem found
    └── ModelError           an embedding model cannot be loaded (missing package, bad path)

Each error's message is meant to be shown to the person who runs cohost as it is.
"""

from __future__ import annotations

from dataclasses import dataclass


class CohostError(Exception):
    """Base class for errors meant for the operator."""


class ConfigError(CohostError):
    """The configuration cannot be used."""


class ModelError(CohostError):
    """A model backend cannot be loaded."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is and what is wrong."""

    file: str
    where: str  # "row 7", "products[2].faqs[0]" ...
    field: str | None
    message: str

    def __str__(self) -> str:
        field = f" field '{self.field}'" if self.field else ""
        return f"{self.file}: {self.where}{field}: {self.message}"


class CatalogError(CohostError):
    """A catalog or FAQ file is invalid. Nothing from it was loaded."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) found, nothing was loaded:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))
