"""The catalog owners' HTTP API (documented at /docs) under /api/shops/{shop}/...

Every change makes a new catalog version (see knowledge/store.py) and is built and swapped in while
rooms keep answering. Send ``base_version`` (the version you looked at) to be told about a concurrent
change (409) instead of overwriting it. All endpoints need the admin token: ``Authorization: Bearer T``,
``X-Cohost-Token: T`` or ``?token=T``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as FPath
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..engine import AnswerEngine, Message
from ..errors import CatalogError, Problem
from ..knowledge.catalog import FAQ, Catalog, Product, validate_catalog
from ..knowledge.diff import diff_catalogs
from ..knowledge.export import FORMATS, dump_catalog
from ..knowledge.gaps import GapCluster, cluster_gaps, draft_faq
from ..knowledge.service import CatalogService
from ..knowledge.store import StoreError, VersionConflict
from ..knowledge.uploads import parse_upload, upload_change

SHOP = r"^[a-z0-9_-]{1,64}$"
M = TypeVar("M", bound=BaseModel)
BEARER = HTTPBearer(auto_error=False, description="the admin token (COHOST_ADMIN_TOKEN, or printed by `cohost run`)")
ShopId = Annotated[str, FPath(pattern=SHOP, description="shop id: lowercase letters, digits, - or _")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaqIn(_In):
    id: str = Field(examples=["dress_wash"])
    product_id: str | None = Field(None, description="the product it belongs to; null for a shop-wide FAQ")
    question: str = Field(examples=["能机洗吗"])
    answer: str = Field(examples=["可以机洗，建议30度以下轻柔模式"])
    variants: list[str] = Field(default_factory=list, examples=[["可以放洗衣机吗"]])
    base_version: int | None = None


class ProductIn(_In):
    id: str
    name: str
    link: int | None = None
    aliases: list[str] = Field(default_factory=list)
    price: float | None = None
    specs: dict[str, str] = Field(default_factory=dict)
    selling_points: list[str] = Field(default_factory=list)
    base_version: int | None = None


class RollbackIn(_In):
    version: int = Field(description="the version whose content becomes current again")
    base_version: int | None = None


class AskIn(_In):
    text: str = Field(examples=["有大码吗"])
    on_stage: str | None = Field(None, description="the product on stage, as in a live room")


class PublishIn(_In):
    answer: str
    question: str | None = None
    variants: list[str] | None = None
    product_id: str | None = None
    faq_id: str | None = None
    base_version: int | None = None


def problems_json(problems: list[Problem]) -> list[dict[str, Any]]:
    return [{"file": p.file, "where": p.where, "field": p.field, "message": p.message} for p in problems]


def _valid(model: type[M], data: dict[str, Any], where: str) -> M:
    """A catalog model from API fields; field problems come back as a CatalogError like a file's."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise CatalogError([Problem("api", where, str(err["loc"][0]) if err["loc"] else None, err["msg"])
                            for err in e.errors()]) from None


def _invalid(source: str, where: str, message: str, field: str | None = None) -> CatalogError:
    return CatalogError([Problem(source, where, field, message)])


def _all_faqs(catalog: Catalog) -> dict[str, tuple[str | None, FAQ]]:
    found: dict[str, tuple[str | None, FAQ]] = {f.id: (None, f) for f in catalog.shop.faqs}
    for p in catalog.products:
        found.update({f.id: (p.id, f) for f in p.faqs})
    return found


def _without_faq(catalog: Catalog, faq_id: str) -> Catalog:
    shop = catalog.shop.model_copy(update={"faqs": tuple(f for f in catalog.shop.faqs if f.id != faq_id)})
    products = tuple(p.model_copy(update={"faqs": tuple(f for f in p.faqs if f.id != faq_id)})
                     for p in catalog.products)
    return catalog.model_copy(update={"shop": shop, "products": products})


def _need(catalog: Catalog | None) -> Catalog:
    if catalog is None:
        raise StoreError("this shop has no catalog yet; upload one first")
    return catalog


def _revalidate(catalog: Catalog, source: str) -> Catalog:
    return validate_catalog(catalog.model_dump(), source)


def make_router(catalogs: CatalogService, token: str, max_upload_bytes: int) -> APIRouter:
    store = catalogs.store

    def require_token(bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
                      x_cohost_token: Annotated[str | None, Header()] = None,
                      token_q: Annotated[str | None, Query(alias="token")] = None) -> None:
        given = bearer.credentials if bearer else (x_cohost_token or token_q)
        # Bytes: compare_digest raises TypeError on a non-ASCII str, which would be a 500, not a 401.
        if not given or not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "admin token missing or wrong", headers={"WWW-Authenticate": "Bearer"})

    router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

    async def engine_for(shop: str) -> AnswerEngine:
        try:
            return await catalogs.load(shop)
        except StoreError as e:
            raise HTTPException(404, str(e)) from None

    async def change(shop: str, fn: Callable[[Catalog | None], Catalog], *, base_version: int | None, note: str,
                     source: str = "api", wait: bool = True) -> dict[str, Any]:
        info = await catalogs.change(shop, fn, base_version=base_version, author="api", note=note, source=source,
                                     wait=wait)
        build = catalogs.builds[shop].to_json()
        if wait and info.status == "failed":
            # The version is stored (nothing is lost) but does not serve: say so, not 200.
            raise HTTPException(500, f"version {info.version} was saved but its index failed to build: "
                                     f"{info.error}; the previous version keeps serving")
        return {"version": info.to_json(), "build": build}

    @router.get("/shops", summary="Shops in the store and the version each serves")
    async def shops() -> list[dict[str, Any]]:
        out = []
        for shop in await asyncio.to_thread(store.shops):
            info = await asyncio.to_thread(store.serving, shop)
            out.append({"shop": shop, "serving": info.to_json() if info else None,
                        "default": shop == catalogs.default_shop})
        return out

    @router.get("/shops/{shop}/status", summary="Serving version, newest version and index build progress")
    async def status(shop: ShopId) -> dict[str, Any]:
        # The build is read before the store: a build is marked in the store before it reports "ready",
        # so a "ready" build is never shown beside a store row still saying "building".
        build = catalogs.builds.get(shop)
        build_json = build.to_json() if build else None
        head = await asyncio.to_thread(store.head, shop)
        if head is None:
            raise HTTPException(404, f"shop {shop!r} has no catalog yet")
        serving = await asyncio.to_thread(store.serving, shop)
        return {"shop": shop, "head": head.to_json(), "serving": serving.to_json() if serving else None,
                "build": build_json}

    @router.get("/shops/{shop}/versions", summary="Every version, newest first")
    async def versions(shop: ShopId) -> list[dict[str, Any]]:
        return [v.to_json() for v in await asyncio.to_thread(store.versions, shop)]

    @router.get("/shops/{shop}/catalog", summary="Download the catalog (YAML, JSON; FAQs as CSV or XLSX)")
    async def download(shop: ShopId, format: Annotated[str, Query(pattern="^(yaml|json|csv|xlsx)$")] = "yaml",
                       version: int | None = None) -> Response:
        catalog = await asyncio.to_thread(store.catalog, shop, version)
        data = await asyncio.to_thread(dump_catalog, catalog, format)
        name = f"{shop}-v{version}" if version else shop
        return Response(data, media_type=FORMATS[format],
                        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'})

    @router.post("/shops/{shop}/catalog/upload", summary="Upload a catalog (YAML/JSON) or FAQs (CSV/XLSX)",
                 description="The request body is the file itself (not multipart). `filename` decides the "
                             "format. With `dry_run=true` nothing is written: the answer lists every problem "
                             "or the diff against the current version. Otherwise a new version is made and "
                             "indexed; with `wait=false` the call returns at once and /status shows progress.",
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(shop: ShopId, request: Request, filename: str,
                     dry_run: bool = False, base_version: int | None = None, wait: bool = True) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload_bytes:
            raise _too_large(int(declared), max_upload_bytes)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_upload_bytes:
                raise _too_large(size, max_upload_bytes)
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            raise CatalogError([Problem(filename, "(file)", None, "the file is empty")])
        head_info = await asyncio.to_thread(store.head, shop)
        head = await asyncio.to_thread(store.catalog, shop, head_info.version) if head_info else None
        candidate, kind = await asyncio.to_thread(parse_upload, data, filename, head)
        diff = diff_catalogs(head, candidate)
        base = head_info.version if head_info else 0
        if dry_run:
            return JSONResponse({"ok": True, "kind": kind, "base_version": base, "diff": diff.to_json()})

        result = await change(shop, upload_change(data, filename, candidate, kind), base_version=base_version,
                              note=f"upload {filename}", source=filename, wait=wait)
        return JSONResponse({"ok": True, "kind": kind, "diff": diff.to_json(), **result},
                            status_code=200 if wait else 202)

    @router.post("/shops/{shop}/rollback", summary="Make an earlier version current again (as a new version)")
    async def rollback(shop: ShopId, body: RollbackIn, wait: bool = True) -> dict[str, Any]:
        info = await catalogs.rollback(shop, body.version, base_version=body.base_version, wait=wait)
        return {"version": info.to_json(), "build": catalogs.builds[shop].to_json()}

    @router.post("/shops/{shop}/faqs", summary="Add one FAQ")
    async def add_faq(shop: ShopId, body: FaqIn, wait: bool = True) -> dict[str, Any]:
        faq = _valid(FAQ, body.model_dump(include={"id", "question", "answer", "variants"}), f"faqs.{body.id}")

        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            if body.id in _all_faqs(cat):
                raise _invalid("api", f"faqs.{body.id}", f"FAQ id '{body.id}' already exists; edit it instead", "id")
            return cat.with_faqs([(body.product_id, faq)], source="api")
        return await change(shop, fn, base_version=body.base_version, note=f"add FAQ {body.id}", wait=wait)

    @router.put("/shops/{shop}/faqs/{faq_id}", summary="Edit one FAQ (it may move to another product)")
    async def edit_faq(shop: ShopId, faq_id: str, body: FaqIn, wait: bool = True) -> dict[str, Any]:
        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            if faq_id not in _all_faqs(cat):
                raise StoreError(f"no FAQ '{faq_id}'")
            faq = _valid(FAQ, body.model_dump(include={"id", "question", "answer", "variants"}), f"faqs.{faq_id}")
            if body.id != faq_id and body.id in _all_faqs(cat):
                # A rename onto another FAQ's id would silently replace that FAQ.
                raise _invalid("api", f"faqs.{faq_id}", f"FAQ id '{body.id}' already exists", "id")
            cat = _without_faq(cat, faq_id) if body.id != faq_id else cat
            return cat.with_faqs([(body.product_id, faq)], source="api")
        return await change(shop, fn, base_version=body.base_version, note=f"edit FAQ {faq_id}", wait=wait)

    @router.delete("/shops/{shop}/faqs/{faq_id}", summary="Delete one FAQ")
    async def delete_faq(shop: ShopId, faq_id: str, base_version: int | None = None, wait: bool = True
                         ) -> dict[str, Any]:
        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            if faq_id not in _all_faqs(cat):
                raise StoreError(f"no FAQ '{faq_id}'")
            return _without_faq(cat, faq_id)
        return await change(shop, fn, base_version=base_version, note=f"delete FAQ {faq_id}", wait=wait)

    def _product(body: ProductIn, faqs: tuple[FAQ, ...]) -> Product:
        fields = body.model_dump(exclude={"base_version"})
        return _valid(Product, {**fields, "faqs": [f.model_dump() for f in faqs]}, f"products.{body.id}")

    @router.post("/shops/{shop}/products", summary="Add one product")
    async def add_product(shop: ShopId, body: ProductIn, wait: bool = True) -> dict[str, Any]:
        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            if cat.product(body.id) is not None:
                raise _invalid("api", f"products.{body.id}", f"product '{body.id}' already exists", "id")
            return _revalidate(cat.model_copy(update={"products": (*cat.products, _product(body, ()))}), "api")
        return await change(shop, fn, base_version=body.base_version, note=f"add product {body.id}", wait=wait)

    @router.put("/shops/{shop}/products/{product_id}", summary="Edit one product (its FAQs are kept)")
    async def edit_product(shop: ShopId, product_id: str, body: ProductIn, wait: bool = True) -> dict[str, Any]:
        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            old = cat.product(product_id)
            if old is None:
                raise StoreError(f"no product '{product_id}'")
            products = tuple(_product(body, old.faqs) if p.id == product_id else p for p in cat.products)
            return _revalidate(cat.model_copy(update={"products": products}), "api")
        return await change(shop, fn, base_version=body.base_version, note=f"edit product {product_id}", wait=wait)

    @router.delete("/shops/{shop}/products/{product_id}", summary="Delete one product and its FAQs")
    async def delete_product(shop: ShopId, product_id: str, base_version: int | None = None, wait: bool = True
                             ) -> dict[str, Any]:
        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            if cat.product(product_id) is None:
                raise StoreError(f"no product '{product_id}'")
            return cat.model_copy(update={"products": tuple(p for p in cat.products if p.id != product_id)})
        return await change(shop, fn, base_version=base_version, note=f"delete product {product_id}", wait=wait)

    @router.post("/shops/{shop}/ask", summary="Try a question: which FAQ answers it, and how confidently")
    async def ask(shop: ShopId, body: AskIn) -> dict[str, Any]:
        engine = await engine_for(shop)
        d = await asyncio.to_thread(engine.answer, Message(body.text, None, body.on_stage))
        by_id = {e.id: e for e in engine.entries}
        return {"text": body.text, "answered": d.answered, "faq_id": d.faq_id, "reply": d.reply,
                "confidence": round(d.score, 3), "reason": d.reason, "intent": d.intent.label,
                "product_id": d.product_id, "version": catalogs.serving_version(shop),
                "candidates": [{"id": c.entry_id, "score": round(c.score, 3), "question": by_id[c.entry_id].question,
                                "answer": by_id[c.entry_id].answer} for c in d.candidates[:5] if c.entry_id in by_id]}

    async def clusters(shop: str, days: float | None) -> list[GapCluster]:
        engine = await engine_for(shop)
        since = time.time() - 86400 * (days if days is not None else engine.config.store.gap_days)
        gaps = await asyncio.to_thread(store.open_gaps, shop, since)
        return await asyncio.to_thread(cluster_gaps, gaps, engine.embedder.embed_queries)

    @router.get("/shops/{shop}/gaps", summary="Questions viewers asked that nothing answered, clustered")
    async def gaps(shop: ShopId, days: float | None = None) -> list[dict[str, Any]]:
        return [c.to_json() for c in await clusters(shop, days)]

    @router.post("/shops/{shop}/gaps/{cluster_id}/draft", summary="Turn a cluster of gaps into a draft FAQ")
    async def draft(shop: ShopId, cluster_id: str, days: float | None = None) -> dict[str, Any]:
        found = next((c for c in await clusters(shop, days) if c.id == cluster_id), None)
        if found is None:
            raise HTTPException(404, f"no open gap cluster {cluster_id!r} (already drafted?)")
        d = draft_faq(found)
        made = await asyncio.to_thread(lambda: store.create_draft(
            shop, product_id=d["product_id"], question=d["question"], variants=d["variants"], cluster=found.id,
            gap_ids=found.gap_ids))
        return made.to_json()

    @router.get("/shops/{shop}/drafts", summary="Draft FAQs waiting for an answer")
    async def drafts(shop: ShopId) -> list[dict[str, Any]]:
        return [d.to_json() for d in await asyncio.to_thread(store.drafts, shop)]

    @router.post("/shops/{shop}/drafts/{draft_id}/publish", summary="Answer a draft: it becomes an FAQ")
    async def publish(shop: ShopId, draft_id: int, body: PublishIn, wait: bool = True) -> dict[str, Any]:
        d = await asyncio.to_thread(store.draft, shop, draft_id)
        if d.status != "draft":
            raise HTTPException(409, f"draft {draft_id} is already {d.status}")
        faq_id = body.faq_id or f"gap_{draft_id}"
        product_id = body.product_id if body.product_id is not None else d.product_id
        faq = _valid(FAQ, {"id": faq_id, "question": body.question or d.question, "answer": body.answer,
                           "variants": body.variants if body.variants is not None else list(d.variants)},
                     f"drafts.{draft_id}")

        def fn(cat: Catalog | None) -> Catalog:
            cat = _need(cat)
            if faq_id in _all_faqs(cat):
                raise _invalid("api", f"faqs.{faq_id}", f"FAQ id '{faq_id}' already exists", "faq_id")
            return cat.with_faqs([(product_id, faq)], source="api")
        result = await change(shop, fn, base_version=body.base_version, note=f"FAQ {faq_id} from draft {draft_id}",
                              wait=wait)
        await asyncio.to_thread(lambda: store.close_draft(shop, draft_id, "published", faq_id=faq_id,
                                                          version=result["version"]["version"]))
        return {**result, "faq_id": faq_id}

    @router.delete("/shops/{shop}/drafts/{draft_id}", summary="Discard a draft (its questions leave the report)")
    async def discard(shop: ShopId, draft_id: int) -> dict[str, Any]:
        await asyncio.to_thread(store.draft, shop, draft_id)
        await asyncio.to_thread(store.close_draft, shop, draft_id, "discarded")
        return {"ok": True}

    return router


def _too_large(size: int, limit: int) -> HTTPException:
    return HTTPException(413, f"the file is {size} bytes or more; the limit is {limit} bytes "
                              "(store.max_upload_bytes in config.yaml)")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CatalogError)
    async def invalid(_request: Request, e: CatalogError) -> JSONResponse:
        return JSONResponse({"error": f"{len(e.problems)} problem(s) found; nothing was changed",
                             "problems": problems_json(e.problems)}, status_code=422)

    @app.exception_handler(VersionConflict)
    async def conflict(_request: Request, e: VersionConflict) -> JSONResponse:
        return JSONResponse({"error": str(e), "head": e.head, "base_version": e.base}, status_code=409)

    @app.exception_handler(StoreError)
    async def missing(_request: Request, e: StoreError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=404)
