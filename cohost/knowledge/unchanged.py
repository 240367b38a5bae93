"""An upload that changes nothing writes nothing.

Re-uploading the file that is already live used to make a new version (and rebuild its index) each time.
The check runs inside the store's commit, against the catalog the change is actually based on at that
moment, so a preview that raced another edit is still judged against what it would replace.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CohostError
from .catalog import Catalog


class Unchanged(CohostError):
    """The change would write a catalog identical to the one it is based on: nothing was written."""


def same_catalog(a: Catalog | None, b: Catalog | None) -> bool:
    """Equal in the canonical form the store keeps (its JSON), so order matters: product and FAQ order is
    what the room's links and /admin show."""
    return a is not None and b is not None and a.model_dump_json() == b.model_dump_json()


def unless_unchanged(change: Callable[[Catalog | None], Catalog]) -> Callable[[Catalog | None], Catalog]:
    """``change``, raising Unchanged (which rolls the commit back) when its result equals its input."""
    def checked(current: Catalog | None) -> Catalog:
        new = change(current)
        if same_catalog(current, new):
            raise Unchanged("the catalog is unchanged")
        return new
    return checked
