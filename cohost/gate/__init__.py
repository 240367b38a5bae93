"""The gate every outgoing text passes (see check.py): advertising-law words, and claims that must rest on
the catalog entry the text answers from."""

from .check import Cleared, Gate, Problem, Verdict, WordLists, packaged_words
from .numerals import Claim, claims

__all__ = ["Claim", "Cleared", "Gate", "Problem", "Verdict", "WordLists", "claims", "packaged_words"]
