"""The catalog owners' HTTP API (documented at /docs) under /api/shops/{shop}/...

Every change makes a new catalog version (see knowledge/store.py) and is built and swapped in while
rooms keep answering. Send ``base_version`` (the version you looked at) to be told about a concurrent
change (409) instead of overwriting it. All endpoints need the admin token in a header: ``Authorization:
Bearer T`` or ``X-Cohost-Token: T`` (never ``?token=``: a URL is kept in history, logs and screenshots).
Messages are in Chinese unless the request asks for ``Accept-Language: en`` (cohost/messages.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as FPath
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import messages
from ..engine import AnswerEngine, Message
from ..errors import CatalogError, Problem
from ..knowledge.audit import OUTCOMES, AuditError, AuditLog
from ..knowledge.catalog import FAQ, Catalog, Product, validate_catalog
from ..knowledge.export import FORMATS, dump_catalog
from ..knowledge.gap_report import DEFAULT_LIMIT as GAP_LIMIT
from ..knowledge.gap_report import MAX_LIMIT as GAP_MAX_LIMIT
from ..knowledge.gap_report import GapReport
from ..knowledge.gaps import draft_faq
from ..knowledge.moderation import BLOCK_KINDS, Moderation, ModerationError
from ..knowledge.service import CatalogService
from ..knowledge.store import StoreError, VersionConflict, VersionState
from ..knowledge.unchanged import Unchanged, unless_unchanged
from ..knowledge.uploads import aprepare_upload, upload_change

SHOP = r"^[a-z0-9_-]{1,64}$"
M = TypeVar("M", bound=BaseModel)
BEARER = HTTPBearer(auto_error=False, description="the admin token (COHOST_ADMIN_TOKEN, or printed by `cohost run`)")
ShopId = Annotated[str, FPath(pattern=SHOP, description="shop id: lowercase letters, digits, - or _")]
# Versions and draft ids are SQLite integers: one past int64 cannot even be looked up (OverflowError, a 500),
# so the range is checked with the request (422, in Chinese, naming the field: see bad_request below).
VersionNo = Annotated[int, Field(ge=1, le=messages.INT64_MAX)]
BaseVersion = Annotated[int, Field(ge=0, le=messages.INT64_MAX)]  # 0: "the shop had no version yet"
DraftId = Annotated[int, FPath(ge=1, le=messages.INT64_MAX)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaqIn(_In):
    id: str = Field(examples=["dress_wash"])
    product_id: str | None = Field(None, description="the product it belongs to; null for a shop-wide FAQ")
    question: str = Field(examples=["能机洗吗"])
    answer: str = Field(examples=["可以机洗，建议30度以下轻柔模式"])
    variants: list[str] = Field(default_factory=list, examples=[["可以放洗衣机吗"]])
    base_version: BaseVersion | None = None


class ProductIn(_In):
    id: str
    name: str
    link: int | None = None
    aliases: list[str] = Field(default_factory=list)
    price: float | None = None
    specs: dict[str, str] = Field(default_factory=dict)
    selling_points: list[str] = Field(default_factory=list)
    base_version: BaseVersion | None = None


class RollbackIn(_In):
    version: VersionNo = Field(description="the version whose content becomes current again")
    base_version: BaseVersion | None = None


class AskIn(_In):
    text: str = Field(examples=["有大码吗"])
    on_stage: str | None = Field(None, description="the product on stage, as in a live room")


class PublishIn(_In):
    answer: str
    question: str | None = None
    variants: list[str] | None = None
    product_id: str | None = None
    faq_id: str | None = None
    base_version: BaseVersion | None = None


def problems_json(problems: list[Problem], lang: str = "en") -> list[dict[str, Any]]:
    return messages.problems_json(problems, lang)


def request_lang(request: Request) -> str:
    return messages.pick_lang(request.headers.get("accept-language"))


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


def make_router(catalogs: CatalogService, token: str, max_upload_bytes: int, *, audit: AuditLog | None = None,
                moderation: Moderation | None = None) -> APIRouter:
    store = catalogs.store

    def require_token(request: Request,
                      bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
                      x_cohost_token: Annotated[str | None, Header()] = None) -> None:
        lang = request_lang(request)
        if "token" in request.query_params:
            # Refused even when right: a token in a URL ends up in history, proxy logs and screenshots.
            raise HTTPException(401, messages.text("token_in_query", lang), headers={"WWW-Authenticate": "Bearer"})
        given = bearer.credentials if bearer else x_cohost_token
        # Bytes: compare_digest raises TypeError on a non-ASCII str, which would be a 500, not a 401.
        if not given or not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, messages.text("token_wrong", lang), headers={"WWW-Authenticate": "Bearer"})

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

    async def unchanged_json(shop: str, kind: str, request: Request) -> dict[str, Any]:
        """The answer to an upload that changes nothing: no version is made, the head is named."""
        head = await asyncio.to_thread(store.head, shop)
        version = head.version if head else 0
        return {"ok": True, "kind": kind, "unchanged": True, "version": head.to_json() if head else None,
                "message": messages.text("unchanged", request_lang(request), version=version)}

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
                       version: Annotated[VersionNo | None, Query()] = None) -> Response:
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
        gate = await asyncio.to_thread(store.gate, shop)
        # Parsing, validation, the gate's check and the diff run in the parse worker, another process with
        # a memory and a time budget: none of it holds this process's interpreter lock, so rooms keep
        # answering. The diff comes back encoded; only a change needs the catalog itself.
        prepared = await aprepare_upload(data, filename, head, gate, want_candidate=not dry_run)
        kind = prepared.kind
        base = head_info.version if head_info else 0
        if dry_run:
            return _with_diff({"ok": True, "kind": kind, "base_version": base}, prepared.diff_json)

        assert prepared.candidate is not None
        try:
            result = await change(shop, unless_unchanged(upload_change(data, filename, prepared.candidate, kind)),
                                  base_version=base_version, note=f"upload {filename}", source=filename, wait=wait)
        except Unchanged:
            return JSONResponse(await unchanged_json(shop, kind, request))
        return _with_diff({"ok": True, "kind": kind, **result}, prepared.diff_json, status_code=200 if wait else 202)

    @router.post("/shops/{shop}/rollback", summary="Make an earlier version current again (as a new version)")
    async def rollback(shop: ShopId, body: RollbackIn, wait: bool = True) -> dict[str, Any]:
        info = await catalogs.rollback(shop, body.version, base_version=body.base_version, wait=wait)
        return {"version": info.to_json(), "build": catalogs.builds[shop].to_json()}

    @router.post("/shops/{shop}/versions/{version}/rebuild", summary="Build a failed version's index again",
                 description="For a version whose build failed or was interrupted (the server was killed "
                             "mid-build). Its content is unchanged. Once ready it serves if it is the newest "
                             "ready version; if a newer version was made since, that one keeps serving and "
                             "this one can be rolled back to. 409 when the version is not failed.")
    async def rebuild(shop: ShopId, version: Annotated[int, FPath(ge=1, le=messages.INT64_MAX)], wait: bool = True
                      ) -> dict[str, Any]:
        try:
            info = await catalogs.rebuild(shop, version, wait=wait)
        except VersionState:
            now = await asyncio.to_thread(store.version, shop, version)
            if now.status == "failed":  # its lease is held: another process is rebuilding it right now
                raise HTTPException(409, f"v{version} 正在被另一个进程重新建立索引，请稍后刷新") from None
            what = {"ready": "已经建好索引", "building": "正在建立索引"}.get(now.status, now.status)
            raise HTTPException(409, f"v{version} {what}，只有失败的版本可以重新建立索引") from None
        build = catalogs.builds[shop].to_json()
        if wait and info.status == "failed":
            raise HTTPException(500, f"v{version} 重新建立索引又失败了：{info.error}；直播间仍在用之前的版本")
        return {"version": info.to_json(), "build": build,
                "serving": catalogs.serving_version(shop) == version if wait else None}

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
        # 试一试 shows what a room would send: the engine's reply after the same gate (a preview that skipped it
        # could show the owner a reply no room would ever post).
        verdict = None
        if d.reply is not None:
            entry = by_id.get(d.faq_id or "")
            facts = engine.catalog.reply_facts(d.product_id, entry.answer if entry is not None else d.reply)
            verdict = (await asyncio.to_thread(store.gate, shop)).check(d.reply, facts)
        reply = str(verdict.text) if verdict is not None and verdict.action != "block" else None
        return {"text": body.text, "answered": d.answered and reply is not None, "faq_id": d.faq_id, "reply": reply,
                "gate": None if verdict is None else {"action": verdict.action, "rule": verdict.rule,
                                                      "engine_reply": d.reply},
                "confidence": round(d.score, 3), "reason": d.reason, "intent": d.intent.label,
                "product_id": d.product_id, "version": catalogs.serving_version(shop),
                "candidates": [{"id": c.entry_id, "score": round(c.score, 3), "question": by_id[c.entry_id].question,
                                "answer": by_id[c.entry_id].answer} for c in d.candidates[:5] if c.entry_id in by_id]}

    # The report is kept up to date in the background (knowledge/gap_report.py): a request reads it.
    report = GapReport.of(catalogs)

    def gap_days(days: float | None) -> float | None:
        if days is not None and not (math.isfinite(days) and days > 0):
            raise InputError("days（天数）必须是大于 0 的数字", "days")
        return days

    @router.get("/shops/{shop}/gaps", summary="Questions viewers asked that nothing answered, clustered",
                description="The biggest clusters first (`limit`, default 200). A cluster that the serving "
                            "version answered leaves the list; `returned: true` marks one that was answered "
                            "and was asked again since (`answered_version`, `answered_count`).")
    async def gaps(shop: ShopId, days: float | None = None,
                   limit: Annotated[int, Query(ge=1, le=GAP_MAX_LIMIT)] = GAP_LIMIT) -> Response:
        await engine_for(shop)
        body = await report.clusters_json(shop, days=gap_days(days), limit=limit)
        return Response(body, media_type="application/json")

    @router.get("/shops/{shop}/gaps/status", summary="How many clusters and questions the gap report holds",
                description="`clusters` and `asked`: shown; `returned`: shown again after an answer; `pending`: "
                            "questions not clustered yet; `checking`: clusters the serving `version` has "
                            "still to be asked; `answered`: questions a version answered since they were asked; "
                            "`excluded`: messages that were not questions.")
    async def gaps_status(shop: ShopId) -> dict[str, Any]:
        await engine_for(shop)
        return await report.status(shop)

    @router.post("/shops/{shop}/gaps/{cluster_id}/draft", summary="Turn a cluster of gaps into a draft FAQ")
    async def draft(shop: ShopId, cluster_id: str, days: float | None = None) -> dict[str, Any]:
        await engine_for(shop)
        found = await report.cluster(shop, cluster_id, days=gap_days(days))
        if found is None:
            raise HTTPException(404, f"no open gap cluster {cluster_id!r} (already drafted?)")
        d = draft_faq(found)
        made = await asyncio.to_thread(lambda: store.create_draft(
            shop, product_id=d["product_id"], question=d["question"], variants=d["variants"], cluster=found.id,
            gap_ids=found.gap_ids))
        await report.drafted(shop, found.gap_ids)
        return made.to_json()

    @router.get("/shops/{shop}/drafts", summary="Draft FAQs waiting for an answer")
    async def drafts(shop: ShopId) -> list[dict[str, Any]]:
        return [d.to_json() for d in await asyncio.to_thread(store.drafts, shop)]

    @router.post("/shops/{shop}/drafts/{draft_id}/publish", summary="Answer a draft: it becomes an FAQ")
    async def publish(shop: ShopId, draft_id: DraftId, body: PublishIn, wait: bool = True) -> dict[str, Any]:
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
    async def discard(shop: ShopId, draft_id: DraftId) -> dict[str, Any]:
        await asyncio.to_thread(store.draft, shop, draft_id)
        await asyncio.to_thread(store.close_draft, shop, draft_id, "discarded")
        return {"ok": True}

    _safety_routes(router, audit, moderation)
    return router


# -- the audit log, the blocklist and the shop's advertising-law words ----------------------------------------

class InputError(ValueError):
    """A request parameter or body field the safety endpoints refuse: 422 with a Chinese message and the field."""

    def __init__(self, message: str, field: str | None = None, status: int = 422):
        self.field, self.status = field, status
        super().__init__(message)


class BlockIn(_In):
    kind: str = Field(description="user_id (the platform's user id) or name (the display name)",
                      examples=["user_id"])
    value: str = Field(description="1–64 characters", examples=["10086"])
    note: str = Field("", description="why (up to 200 characters)", examples=["刷广告"])


class WordsIn(_In):
    banned: list[str] = Field(description="words refused beside the packaged advertising-law list (1–20 chars, "
                                          "at most 500)", examples=[["秒杀价"]])
    allowed: list[str] = Field(description="exceptions to that list", examples=[["最大码"]])


AUDIT_LIMIT_MAX = 500
_BODY_MAX = 256 * 1024
_CSV_CHUNK_LINES = 200
_FIELDS_ZH = {"kind": "屏蔽类型", "value": "屏蔽的值", "note": "备注", "banned": "额外禁用词", "allowed": "允许的词",
              "viewer_max_per_min": "每位观众每分钟最多几条"}


def _text_param(value: str | None, field: str, what: str, max_len: int) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > max_len:
        raise InputError(f"{field}（{what}）太长了，最多 {max_len} 个字", field)
    return value.strip()


def _time_param(value: str | None, field: str, what: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        t = float(value)
    except ValueError:
        t = math.nan
    if not math.isfinite(t):
        raise InputError(f"{field}（{what}）必须是数字：Unix 时间，单位秒，例如 1732250000", field)
    return t


def _int_param(value: str | None, field: str, what: str, default: int, low: int, high: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        n = int(value)
    except ValueError:
        n = low - 1
    if not low <= n <= high:
        raise InputError(f"{field}（{what}）必须是 {low} 到 {high} 之间的整数", field)
    return n


def _audit_filters(q: str | None, outcome: str | None, room: str | None, since: str | None, until: str | None
                   ) -> dict[str, Any]:
    out = _text_param(outcome, "outcome", "结果", 20)
    if out is not None and out not in OUTCOMES:
        raise InputError(f"outcome（结果）只能是 {'、'.join(OUTCOMES)} 之一，收到的是“{out}”", "outcome")
    filters = {"q": _text_param(q, "q", "搜索词", 200), "outcome": out, "room": _text_param(room, "room", "直播间", 64),
               "since": _time_param(since, "since", "开始时间"), "until": _time_param(until, "until", "结束时间")}
    if filters["since"] is not None and filters["until"] is not None and filters["since"] > filters["until"]:
        raise InputError("since（开始时间）不能晚于 until（结束时间）", "since")
    return filters


async def _json_body(request: Request, fields: dict[str, tuple[type, bool]]) -> dict[str, Any]:
    """A JSON object with exactly these fields ({name: (type, required)}); Chinese errors naming the field."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > _BODY_MAX:
        raise InputError(f"请求体太大，最多 {_BODY_MAX // 1024} KB", None, 413)
    raw = await request.body()
    if len(raw) > _BODY_MAX:
        raise InputError(f"请求体太大，最多 {_BODY_MAX // 1024} KB", None, 413)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise InputError("请求体不是有效的 JSON", None) from None
    if not isinstance(data, dict):
        raise InputError("请求体必须是一个 JSON 对象，例如 " + json.dumps(
            {k: ([] if t is list else "…") for k, (t, _) in fields.items()}, ensure_ascii=False), None)
    for key in data:
        if key not in fields:
            raise InputError(f"不认识的字段 {key}（拼写错了？）；可以用的字段：{'、'.join(fields)}", key)
    for key, (kind, required) in fields.items():
        if key not in data:
            if required:
                raise InputError(f"缺少 {key}（{_FIELDS_ZH.get(key, key)}）", key)
            continue
        value = data[key]
        if kind is list and not (isinstance(value, list) and all(isinstance(w, str) for w in value)):
            raise InputError(f"{key}（{_FIELDS_ZH.get(key, key)}）必须是文字的列表，例如 [\"秒杀价\"]", key)
        if kind is str and not isinstance(value, str):
            raise InputError(f"{key}（{_FIELDS_ZH.get(key, key)}）必须是文字", key)
    return data


def _chunks(lines: Iterator[str]) -> Iterator[str]:
    """The CSV with a BOM (so that Excel reads UTF-8 Chinese), a few hundred lines a chunk."""
    batch = ["\ufeff"]
    for line in lines:
        batch.append(line)
        if len(batch) >= _CSV_CHUNK_LINES:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _safety_routes(router: APIRouter, audit: AuditLog | None, moderation: Moderation | None) -> None:
    def need_audit() -> AuditLog:
        if audit is None:
            raise InputError("这个服务器没有启用回复记录", None, 503)
        return audit

    def need_moderation() -> Moderation:
        if moderation is None:
            raise InputError("这个服务器没有启用屏蔽名单和禁用词设置", None, 503)
        return moderation

    outcomes = "、".join(OUTCOMES)

    @router.get("/shops/{shop}/audit", summary="Replies sent, held, blocked or rewritten, and why; newest first",
                description=f"`q` finds text in the reply, the original, the rule, the FAQ id, the approver and "
                            f"the viewers' messages. `outcome`: one of {outcomes}. `since` (inclusive) and "
                            "`until` (exclusive) are Unix seconds. `limit` 1–500.")
    async def audit_rows(shop: ShopId, q: str | None = None, outcome: str | None = None, room: str | None = None,
                         since: str | None = None, until: str | None = None, limit: str | None = None,
                         offset: str | None = None) -> dict[str, Any]:
        log = need_audit()
        filters = _audit_filters(q, outcome, room, since, until)
        n = _int_param(limit, "limit", "每页条数", 100, 1, AUDIT_LIMIT_MAX)
        start = _int_param(offset, "offset", "起始位置", 0, 0, 10**9)
        rows, total = await asyncio.to_thread(lambda: log.search(shop, **filters, limit=n, offset=start))
        return {"rows": rows, "total": total}

    @router.get("/shops/{shop}/audit.csv", summary="The audit log as CSV (UTF-8 with a BOM, for Excel)",
                response_class=StreamingResponse,
                responses={200: {"content": {"text/csv": {}}, "description": "CSV, a header line first"}})
    async def audit_csv(shop: ShopId, q: str | None = None, outcome: str | None = None, room: str | None = None,
                        since: str | None = None, until: str | None = None) -> StreamingResponse:
        log = need_audit()
        filters = _audit_filters(q, outcome, room, since, until)
        lines = await asyncio.to_thread(lambda: log.export_csv(shop, **filters))
        name = f"{shop}-audit-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        return StreamingResponse(_chunks(lines), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "Cache-Control": "no-store"})

    @router.get("/shops/{shop}/blocklist", summary="Viewers this shop never answers (by user id or by name)")
    async def blocklist(shop: ShopId) -> dict[str, Any]:
        mod = need_moderation()
        return {"blocklist": await asyncio.to_thread(mod.blocklist, shop)}

    @router.post("/shops/{shop}/blocklist", summary="Block a viewer (again: updates the note)",
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/json": {"schema": BlockIn.model_json_schema()}}}})
    async def block(shop: ShopId, request: Request) -> dict[str, Any]:
        mod = need_moderation()
        body = await _json_body(request, {"kind": (str, True), "value": (str, True), "note": (str, False)})
        await asyncio.to_thread(lambda: mod.block(shop, body["kind"], body["value"], note=body.get("note", ""),
                                                  author="admin"))
        return {"ok": True, "blocklist": await asyncio.to_thread(mod.blocklist, shop)}

    @router.delete("/shops/{shop}/blocklist", summary="Unblock a viewer")
    async def unblock(shop: ShopId, kind: str | None = None, value: str | None = None) -> dict[str, Any]:
        mod = need_moderation()
        if not kind:
            raise InputError(f"缺少 kind（屏蔽类型）：{' 或 '.join(BLOCK_KINDS)}", "kind")
        if value is None:
            raise InputError("缺少 value（屏蔽的值）", "value")
        if not await asyncio.to_thread(mod.unblock, shop, kind, value):
            raise InputError(f"屏蔽名单里没有“{value.strip()}”", "value", 404)
        return {"ok": True, "blocklist": await asyncio.to_thread(mod.blocklist, shop)}

    @router.get("/shops/{shop}/limits", summary="Per-viewer limits (null: config.yaml's dialog.viewer_max_per_min)")
    async def limits(shop: ShopId) -> dict[str, Any]:
        mod = need_moderation()
        return await asyncio.to_thread(mod.limits, shop)

    @router.put("/shops/{shop}/limits", summary="Set the per-viewer limits (null for the default)",
                openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"viewer_max_per_min": {"type": ["integer", "null"]}}}}}}})
    async def set_limits(shop: ShopId, request: Request) -> dict[str, Any]:
        mod = need_moderation()
        body = await _json_body(request, {"viewer_max_per_min": (object, True)})
        await asyncio.to_thread(lambda: mod.set_limits(shop, body["viewer_max_per_min"], author="admin"))
        return {"ok": True, **await asyncio.to_thread(mod.limits, shop)}

    @router.get("/shops/{shop}/words", summary="The shop's own advertising-law words: extra banned, and allowed")
    async def words(shop: ShopId) -> dict[str, list[str]]:
        mod = need_moderation()
        return await asyncio.to_thread(mod.words, shop)

    @router.put("/shops/{shop}/words", summary="Replace both word lists",
                openapi_extra={"requestBody": {"required": True, "content": {
                    "application/json": {"schema": WordsIn.model_json_schema()}}}})
    async def set_words(shop: ShopId, request: Request) -> dict[str, Any]:
        mod = need_moderation()
        body = await _json_body(request, {"banned": (list, True), "allowed": (list, True)})
        await asyncio.to_thread(lambda: mod.set_words(shop, body["banned"], body["allowed"], author="admin"))
        return {"ok": True, **await asyncio.to_thread(mod.words, shop)}


def _too_large(size: int, limit: int) -> HTTPException:
    return HTTPException(413, f"the file is {size} bytes or more; the limit is {limit} bytes "
                              "(store.max_upload_bytes in config.yaml)")


def _with_diff(body: dict[str, Any], diff_json: bytes, status_code: int = 200) -> Response:
    """body plus "diff", whose JSON the parse worker encoded: a big diff costs the event loop a copy, not an
    encoding (JSONResponse's json.dumps of a 20,000-FAQ diff held the loop for half a second)."""
    head = json.dumps(jsonable_encoder(body), ensure_ascii=False, separators=(",", ":")).encode()
    return Response(head[:-1] + b',"diff":' + diff_json + b"}", status_code=status_code, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CatalogError)
    async def invalid(request: Request, e: CatalogError) -> JSONResponse:
        lang = request_lang(request)
        return JSONResponse({"error": messages.text("problems", lang, n=len(e.problems)),
                             "problems": problems_json(e.problems, lang)},
                            status_code=getattr(e, "status", 422))  # 413: an upload over a cap or budget

    @app.exception_handler(VersionConflict)
    async def conflict(request: Request, e: VersionConflict) -> JSONResponse:
        return JSONResponse({"error": messages.message(str(e), request_lang(request)), "head": e.head,
                             "base_version": e.base}, status_code=409)

    @app.exception_handler(StoreError)
    async def missing(request: Request, e: StoreError) -> JSONResponse:
        return JSONResponse({"error": messages.message(str(e), request_lang(request))}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's own list stays in "detail" (scripts read it); "error" is the sentence an owner reads.
        error, field = messages.validation_errors(e.errors(), request_lang(request))
        return JSONResponse({"error": error, "field": field, "detail": jsonable_encoder(e.errors())},
                            status_code=422)

    @app.exception_handler(InputError)
    async def bad_input(_request: Request, e: InputError) -> JSONResponse:
        return JSONResponse({"error": str(e), "field": e.field}, status_code=e.status)

    @app.exception_handler(ModerationError)
    @app.exception_handler(AuditError)
    async def refused(_request: Request, e: ModerationError | AuditError) -> JSONResponse:
        return JSONResponse({"error": str(e), "field": e.field}, status_code=422)
