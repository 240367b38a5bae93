"""`cohost knowledge ...`: the catalog store from the command line.

These work on the same SQLite file as the server; a running server notices a version made here within a
couple of seconds and swaps it in (CatalogService.watch).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import messages
from ..config import Config
from ..errors import CatalogError, Problem
from ..gate import Gate
from .catalog import Catalog, load_catalog
from .diff import CatalogDiff
from .export import dump_catalog
from .gaps import cluster_gaps, draft_faq
from .store import CatalogStore, StoreError
from .uploads import UPLOAD_KINDS, prepare_upload, upload_change

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _store(cfg: Config) -> CatalogStore:
    return CatalogStore(cfg.resolve(cfg.store.path))


def build_index(cfg: Config, catalog: Catalog, label: str, lang: str = messages.DEFAULT_LANG) -> None:
    """Build the engine for a catalog with a progress bar: proves the version can serve, and leaves its
    embeddings in the cache so the server's swap is quick."""
    from ..engine import AnswerEngine

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as bar:
        task = bar.add_task(messages.text("indexing", lang, label=label), total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        AnswerEngine(catalog, cfg, progress=progress)


def _commit_and_build(cfg: Config, shop: str, change: Callable[[Catalog | None], Catalog], *,
                      base_version: int | None, note: str, source: str, lang: str = messages.DEFAULT_LANG) -> int:
    store = _store(cfg)
    info, catalog = store.commit(shop, change, base_version=base_version, author="cli", note=note, source=source)
    try:
        build_index(cfg, catalog, f"{shop} v{info.version}", lang)
    except BaseException as e:
        store.mark(shop, info.version, "failed", f"{type(e).__name__}: {e}")
        raise
    store.mark(shop, info.version, "ready")
    out.print(messages.text("version_ready", lang, shop=shop, version=info.version, faqs=info.faqs,
                            products=info.products))
    return info.version


def print_diff(diff: CatalogDiff, lang: str = messages.DEFAULT_LANG) -> None:
    out.print(messages.text("diff_counts", lang, **diff.counts()))
    for ch in diff.faqs[:50]:
        mark = {"added": "[green]+[/]", "changed": "[yellow]~[/]", "removed": "[red]-[/]"}[ch.kind]
        after = ch.after or ch.before
        question = after.question if after else ""
        out.print(f"  {mark} {ch.faq_id} ({ch.product_id or messages.text('diff_shop', lang)}) {question}")
    if len(diff.faqs) > 50:
        out.print(messages.text("diff_more", lang, n=len(diff.faqs) - 50))


def import_file(cfg: Config, path: Path, *, shop: str, base_version: int | None, dry_run: bool,
                lang: str = messages.DEFAULT_LANG) -> int:
    if not path.is_file():
        raise CatalogError([Problem(str(path), "(file)", None, "file not found")])
    size = path.stat().st_size
    if size > cfg.store.max_upload_bytes:
        raise CatalogError([Problem(str(path), "(file)", None, f"file is {size} bytes; the limit is "
                                    f"{cfg.store.max_upload_bytes} bytes (store.max_upload_bytes)")])
    data = path.read_bytes()
    db_path = cfg.resolve(cfg.store.path)
    # Read only if it exists: a dry run or a refused file creates no store file (a commit below makes it).
    store = _store(cfg) if db_path.is_file() else None
    head_info = store.head(shop) if store is not None else None
    head = store.catalog(shop, head_info.version) if store is not None and head_info else None
    if head is None and shop == cfg.store.shop and UPLOAD_KINDS.get(path.suffix.lower()) == "faqs":
        # FAQ rows into a fresh store: `cohost run` would start it with the config's catalog, so the rows
        # are added to that (before, a CSV was refused until the server had run once).
        catalog_path = cfg.resolve(cfg.catalog)
        head = load_catalog(catalog_path)
        err.print(messages.text("import_seed", lang, store=db_path, shop=shop, file=path.name, catalog=catalog_path))
    # In the parse worker, as on the server: the same caps, and a memory and a time budget (a file that
    # needs more is refused, not left to take the machine's memory).
    gate = store.gate(shop) if store is not None else Gate()
    prepared = prepare_upload(data, path.name, head, gate, want_candidate=not dry_run, want_diff=True)
    candidate, kind, diff = prepared.candidate, prepared.kind, prepared.diff
    assert diff is not None
    print_diff(diff, lang)
    if dry_run:
        out.print(messages.text("dry_run", lang))
        return 0
    if diff.empty and head_info is not None:
        out.print(messages.text("nothing_changed", lang, shop=shop, version=head_info.version))
        return 0

    assert candidate is not None
    _commit_and_build(cfg, shop, upload_change(data, path.name, candidate, kind), base_version=base_version,
                      note=f"import {path.name}", source=str(path), lang=lang)
    return 0


def export(cfg: Config, *, shop: str, fmt: str, version: int | None, output: Path | None,
           lang: str = messages.DEFAULT_LANG) -> int:
    data = dump_catalog(_store(cfg).catalog(shop, version), fmt)
    if output is None:
        if fmt == "xlsx":
            raise StoreError("an Excel export needs -o FILE.xlsx")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        err.print(messages.text("wrote", lang, path=output, size=len(data)))
    return 0


def versions(cfg: Config, *, shop: str) -> int:
    store = _store(cfg)
    rows = store.versions(shop)
    if not rows:
        raise StoreError(f"shop {shop!r} has no versions in {store.path}")
    serving = store.serving(shop)
    table = Table(title=f"{shop} — {store.path}")
    for col in ("version", "created", "author", "status", "FAQs", "products", "note"):
        table.add_column(col)
    for v in rows:
        mark = " ◀ serving" if serving and v.version == serving.version else ""
        table.add_row(f"v{v.version}{mark}", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created_at)),
                      v.author, v.status if not v.error else f"{v.status}: {v.error}", str(v.faqs), str(v.products),
                      v.note)
    out.print(table)
    return 0


def rollback(cfg: Config, *, shop: str, version: int, base_version: int | None,
             lang: str = messages.DEFAULT_LANG) -> int:
    store = _store(cfg)
    old = store.catalog(shop, version)
    _commit_and_build(cfg, shop, lambda _head: old, base_version=base_version, note=f"rollback to v{version}",
                      source=f"v{version}", lang=lang)
    return 0


def gaps(cfg: Config, *, shop: str, days: float | None, draft: str | None, limit: int,
         lang: str = messages.DEFAULT_LANG) -> int:
    from ..retrieval.cache import CachedEmbedder
    from ..retrieval.embedders import make_embedder

    store = _store(cfg)
    since = time.time() - 86400 * (days if days is not None else cfg.store.gap_days)
    found = store.open_gaps(shop, since)
    cache_dir = cfg.resolve(cfg.cache_dir) if cfg.cache_dir else None
    embedder = CachedEmbedder(make_embedder(cfg.embedder), cache_dir)
    clusters = cluster_gaps(found, embedder.embed_viewer)  # viewer text: memory only
    embedder.save()
    if draft is not None:
        cluster = next((c for c in clusters if c.id == draft), None)
        if cluster is None:
            raise StoreError(f"no open gap cluster {draft!r}; run `cohost knowledge gaps` to list them")
        d = draft_faq(cluster)
        made = store.create_draft(shop, product_id=d["product_id"], question=d["question"], variants=d["variants"],
                                  cluster=cluster.id, gap_ids=cluster.gap_ids)
        out.print(messages.text("draft_made", lang, id=made.id, question=made.question, asked=made.asked))
        return 0
    if not clusters:
        out.print(messages.text("no_gaps", lang, days=days or cfg.store.gap_days))
        return 0
    table = Table(title=messages.text("gaps_title", lang, shop=shop, found=len(found), clusters=len(clusters)))
    for col in ("cluster", "asked", "product", "question", "examples"):
        table.add_column(col)
    for c in clusters[:limit]:
        table.add_row(c.id, str(c.count), c.product_id or "", c.label, " / ".join(c.examples[1:4]))
    out.print(table)
    out.print(messages.text("gaps_hint", lang))
    return 0
