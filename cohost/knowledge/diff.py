"""What an upload would change: the difference between the live catalog and a new one, shown before it is applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import FAQ, Catalog

_KIND_ORDER = {"added": 0, "changed": 1, "removed": 2}
_FAQ_FIELDS = ("question", "answer", "variants")


@dataclass(frozen=True)
class FaqChange:
    kind: str  # "added" | "changed" | "removed"
    faq_id: str
    product_id: str | None  # where the FAQ is after the change (before it, for "removed"); None = shop-wide
    before: FAQ | None
    after: FAQ | None
    fields: tuple[str, ...] = ()  # for "changed": which of question/answer/variants/product_id changed
    before_product_id: str | None = None  # the old place, which differs from product_id for a moved FAQ

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "faq_id": self.faq_id,
            "product_id": self.product_id,
            "fields": list(self.fields),
            "before": _faq_json(self.before, self.before_product_id),
            "after": _faq_json(self.after, self.product_id),
        }


@dataclass(frozen=True)
class CatalogDiff:
    faqs: tuple[FaqChange, ...]  # added, changed, removed; each by faq_id
    products_added: tuple[str, ...]
    products_removed: tuple[str, ...]
    products_changed: tuple[str, ...]  # any field other than faqs differs
    shop_changed: bool  # shop name differs (always True against no catalog)

    @property
    def empty(self) -> bool:
        return not (self.faqs or self.products_added or self.products_removed or self.products_changed
                    or self.shop_changed)

    def counts(self) -> dict[str, int]:
        kinds = [c.kind for c in self.faqs]
        return {
            "added": kinds.count("added"),
            "changed": kinds.count("changed"),
            "removed": kinds.count("removed"),
            "products_added": len(self.products_added),
            "products_removed": len(self.products_removed),
            "products_changed": len(self.products_changed),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "empty": self.empty,
            "counts": self.counts(),
            "shop_changed": self.shop_changed,
            "products_added": list(self.products_added),
            "products_removed": list(self.products_removed),
            "products_changed": list(self.products_changed),
            "faqs": [c.to_json() for c in self.faqs],
        }


def _faq_json(faq: FAQ | None, product_id: str | None) -> dict[str, Any] | None:
    if faq is None:
        return None
    return {"question": faq.question, "answer": faq.answer, "variants": list(faq.variants), "product_id": product_id}


def _faqs_by_id(catalog: Catalog | None) -> dict[str, tuple[str | None, FAQ]]:
    if catalog is None:
        return {}
    found: dict[str, tuple[str | None, FAQ]] = {f.id: (None, f) for f in catalog.shop.faqs}
    for p in catalog.products:
        found.update((f.id, (p.id, f)) for f in p.faqs)
    return found


def diff_catalogs(old: Catalog | None, new: Catalog) -> CatalogDiff:
    """Compare two catalogs; with old None (nothing loaded yet) everything in new is added."""
    before, after = _faqs_by_id(old), _faqs_by_id(new)
    changes: list[FaqChange] = []
    for fid, (pid, faq) in after.items():
        if fid not in before:
            changes.append(FaqChange("added", fid, pid, None, faq))
            continue
        old_pid, old_faq = before[fid]
        fields = tuple(name for name in _FAQ_FIELDS if getattr(old_faq, name) != getattr(faq, name))
        if old_pid != pid:
            fields += ("product_id",)
        if fields:
            changes.append(FaqChange("changed", fid, pid, old_faq, faq, fields, old_pid))
    for fid, (pid, faq) in before.items():
        if fid not in after:
            changes.append(FaqChange("removed", fid, pid, faq, None, (), pid))
    changes.sort(key=lambda c: (_KIND_ORDER[c.kind], c.faq_id))

    old_products = {p.id: p for p in old.products} if old is not None else {}
    new_ids = {p.id for p in new.products}
    # Catalog order (the order of the live room's links) reads better to shop staff than alphabetical order.
    added = tuple(p.id for p in new.products if p.id not in old_products)
    removed = tuple(pid for pid in old_products if pid not in new_ids)
    changed = tuple(p.id for p in new.products if p.id in old_products
                    and old_products[p.id].model_dump(exclude={"faqs"}) != p.model_dump(exclude={"faqs"}))
    shop_changed = old is None or old.shop.name != new.shop.name
    return CatalogDiff(tuple(changes), added, removed, changed, shop_changed)
