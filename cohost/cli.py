"""The `cohost` command line: wiring only; the work lives in the stage modules."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__, messages
from .errors import CohostError


def _engine(args: argparse.Namespace, catalog_path: str | None = None):
    from .config import load_config
    from .engine import AnswerEngine
    from .knowledge.catalog import load_catalog

    cfg = load_config(args.config)
    if getattr(args, "embedder", None):
        cfg = cfg.model_copy(update={"embedder": cfg.embedder.model_copy(update={"backend": args.embedder})})
    path = Path(catalog_path) if catalog_path else cfg.resolve(cfg.catalog)
    return AnswerEngine(load_catalog(path), cfg)


def cmd_eval_faq(args: argparse.Namespace) -> int:
    from .evaluation import read_cases, run_faq_cases, score_faq, write_jsonl

    cases = read_cases(Path(args.cases), ("id", "text"))
    engine = _engine(args, args.catalog)
    results = list(run_faq_cases(engine, cases, explain=args.explain))
    write_jsonl(Path(args.output), results)
    answered = sum(r["answered"] for r in results)
    lat = sorted(r["latency_ms"] for r in results)
    p95 = lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0] if lat else 0.0
    latency = f"latency p50 {lat[len(lat) // 2]:.1f} ms, p95 {p95:.1f} ms" if lat else "latency —"
    print(f"{len(results)} cases: {answered} answered, {len(results) - answered} abstained; {latency}")
    score = score_faq(cases, results)
    if score:
        print(f"labelled: {score.summary()}")
    print(f"wrote {args.output}")
    return 0


def cmd_eval_intent(args: argparse.Namespace) -> int:
    from .evaluation import read_cases, run_intent_cases, score_intent, write_jsonl

    cases = read_cases(Path(args.cases), ("id", "text"))
    engine = _engine(args)
    results = list(run_intent_cases(engine, cases))
    write_jsonl(Path(args.output), results)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["intent"]] = counts.get(r["intent"], 0) + 1
    print(f"{len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    score = score_intent(cases, results)
    if score:
        print(f"labelled: macro-F1 {score['macro_f1']:.3f}, accuracy {score['accuracy']:.3f}")
    print(f"wrote {args.output}")
    return 0


def _print_report(report: dict, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    width = max(map(len, report), default=0)
    for k, v in report.items():
        print(f"{k:>{width}}: {v}")


def cmd_bench_retrieval(args: argparse.Namespace) -> int:
    from .bench import bench_retrieval

    engine = _engine(args, args.catalog)
    _print_report(bench_retrieval(engine, n=args.n, batch=args.batch), as_json=args.json)
    return 0


def cmd_bench_asr(args: argparse.Namespace) -> int:
    import asyncio

    from .bench_asr import bench_asr

    engine = _engine(args, args.catalog)
    report = asyncio.run(bench_asr(engine, clips_dir=Path(args.clips) if args.clips else None,
                                   repeats=args.repeats, stream_rounds=args.rounds))
    if not args.json:
        per_clip, heard = report.pop("per_clip"), report.pop("heard")
        _print_report(report, as_json=False)
        for c in per_clip:
            print(f"  {c['clip']}: cer {c['cer']:.3f}  heard {c['heard']!r}  reference {c['reference']!r}")
        print("  the stream, as the room read it: " + " | ".join(heard))
        return 0
    _print_report(report, as_json=True)
    return 0


def _ask_engine(args: argparse.Namespace):
    """The engine `cohost ask` answers with: the version `cohost run` serves (same config, same store, same
    shop), unless --catalog names a file; says on stderr which one it is."""
    from .config import load_config
    from .engine import AnswerEngine
    from .knowledge.store import CatalogStore

    if args.catalog:
        engine = _engine(args, args.catalog)
        print(messages.text("ask_from_file", args.lang, path=args.catalog), file=sys.stderr)
        return engine
    cfg = load_config(args.config)
    shop = args.shop or cfg.store.shop
    path = cfg.resolve(cfg.store.path)
    serving = CatalogStore(path).serving(shop) if path.is_file() else None  # asking never creates a store
    if serving is None:
        engine = _engine(args)
        print(messages.text("ask_no_store", args.lang, path=cfg.resolve(cfg.catalog), store=path, shop=shop),
              file=sys.stderr)
        return engine
    if getattr(args, "embedder", None):
        cfg = cfg.model_copy(update={"embedder": cfg.embedder.model_copy(update={"backend": args.embedder})})
    catalog = CatalogStore(path).catalog(shop, serving.version)
    print(messages.text("ask_from_store", args.lang, shop=shop, version=serving.version, path=path), file=sys.stderr)
    return AnswerEngine(catalog, cfg)


def cmd_ask(args: argparse.Namespace) -> int:
    from .engine import Message

    engine = _ask_engine(args)
    texts = args.text or [line.strip() for line in sys.stdin if line.strip()]
    for text in texts:
        d = engine.answer(Message(text, user=args.user, on_stage=args.on_stage))
        # The FAQ id, so an owner can find (and fix) the entry that answered on /admin or in the file.
        answered_by = f"; faq {d.faq_id}" if d.faq_id else ""
        print(f"{text}\n  → {d.reply or '(silent)'}   [{d.intent.label}; {d.reason}{answered_by}]")
    return 0


def cmd_check_reply(args: argparse.Namespace) -> int:
    """Run texts through the gate every reply passes; exit 1 when any would be rewritten or blocked."""
    from .config import load_config
    from .gate import Gate
    from .knowledge.catalog import load_catalog
    from .knowledge.moderation import Moderation

    cfg = load_config(args.config)
    catalog = load_catalog(Path(args.catalog) if args.catalog else cfg.resolve(cfg.catalog))
    if args.product:
        product = catalog.product(args.product)
        if product is None:
            known = ", ".join(p.id for p in catalog.products) or "none"
            raise CohostError(f"no product {args.product!r} in the catalog (products: {known})")
        facts = "\n".join([product.facts_text(), *(f.answer for f in product.faqs)])
    else:
        facts = "\n".join(f.answer for f in catalog.shop.faqs)
    gate = Gate()
    store = cfg.resolve(cfg.store.path)
    if store.exists():  # the owner's own words from /admin
        words = Moderation(store).words(args.shop or cfg.store.shop)
        gate = gate.with_words(words["banned"], words["allowed"])
    texts = args.text or [line.strip() for line in sys.stdin if line.strip()]
    worst = 0
    for text in texts:
        v = gate.check(text, facts, kind=args.kind)
        why = f"  [{', '.join(map(str, v.problems or v.warnings))}: {v.explain()}]" if v.problems or v.warnings else ""
        print(text)
        said = {"pass": "pass", "rewrite": f"rewrite: {v.text}", "block": "block"}[v.action]
        print(f"  → {said}{why}")
        worst = max(worst, v.action != "pass")
    return worst


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from .demo import run_live_demo, run_terminal_demo

    engine = _engine(args, args.catalog)
    if args.terminal:
        return run_terminal_demo(engine)
    return asyncio.run(run_live_demo(engine, speed=args.speed, port=args.port, room=args.room,
                                     exit_after_replay=args.exit_after_replay))


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from .config import load_config
    from .engine import AnswerEngine
    from .knowledge.catalog import load_catalog
    from .knowledge.store import CatalogStore
    from .live import serve_forever

    cfg = load_config(args.config)
    # The store's newest ready version serves, so edits made on /admin survive a restart. --catalog
    # (or an empty store) brings a file in: it is recorded as a new version when it differs.
    store = CatalogStore(cfg.resolve(cfg.store.path))
    serving = None if args.catalog else store.serving(cfg.store.shop)
    if serving is not None:
        catalog, source = store.catalog(cfg.store.shop, serving.version), f"v{serving.version}"
    else:
        path = Path(args.catalog) if args.catalog else cfg.resolve(cfg.catalog)
        catalog, source = load_catalog(path), str(path)
    platform = None
    if args.platform:
        from .sources.platforms import PlatformOptions, connect

        opts = PlatformOptions(room=args.room, code=args.code, url=args.url, mapping=args.mapping,
                               console_port=args.console_port, console_token=os.environ.get("COHOST_CONSOLE_TOKEN"),
                               max_chars=args.max_chars, products=dict(cfg.platform.products),
                               links={p.link: p.id for p in catalog.products if p.link is not None})
        platform = connect(args.platform, opts)
        if platform.max_chars is not None:  # the room composes to what the platform lets this account post
            cfg = cfg.model_copy(update={"reply": cfg.reply.model_copy(update={"max_chars": platform.max_chars})})
    mic = None
    if args.mic:
        from .sources.microphone import check

        device = int(args.mic_device) if args.mic_device and args.mic_device.isdigit() else args.mic_device
        print(f"microphone: {check(device)}")  # before the server starts: no device is a clear error
        mic = device if device is not None else ""
    return asyncio.run(serve_forever(AnswerEngine(catalog, cfg), host=args.host, port=args.port, source=source,
                                     platform=platform, room=args.into, mic=mic))


def cmd_decode(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CohostError(f"{path}: no such file")
    if args.platform == "bilibili":
        from .sources.bilibili.codec import decode_file as bilibili_decode

        rows = bilibili_decode(path)
    elif args.platform == "douyin":
        from .sources.douyin.codec import decode_file as douyin_decode

        rows = douyin_decode(path)
    else:
        from .sources.relay import decode_lines

        if not args.mapping:
            raise CohostError("--platform relay needs --mapping NAME_OR_FILE")
        rows = [{"line": n, **m.as_dict()} for n, m in decode_lines(args.mapping, path)]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False, default=str))
    return 0


def cmd_bench_decode(args: argparse.Namespace) -> int:
    from .sources.bilibili.codec import bench_decode as bilibili_bench
    from .sources.douyin.codec import bench_decode as douyin_bench

    result = {"bilibili_packets_per_s": round(bilibili_bench(args.seconds)),
              "douyin_frames_per_s": round(douyin_bench(args.seconds))}
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v:,}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from .config import load_config
    from .sources.replay import ingest_url, load_recording, replay

    cfg = load_config(args.config)
    events = load_recording(Path(args.file))
    host = args.host or cfg.server.host
    port = args.port or cfg.server.port
    url = ingest_url(host, port, args.room, os.environ.get(cfg.server.ingest_token_env))

    def show(msg: dict) -> None:
        if msg.get("type") == "reply":
            print(f"💬 {msg['text']}   ({msg.get('faq_id')}, {msg.get('latency_ms')} ms)", flush=True)
        elif msg.get("type") == "heard":
            print(f"🎙 {msg['text'] or '（没听清）'}", flush=True)
        else:
            print(f"!! {msg.get('error')}", flush=True)

    try:
        result = asyncio.run(replay(url, events, speed=args.speed, on_message=show))
    except OSError as e:
        raise CohostError(f"cannot reach the server at {url}: {e}") from None
    print(f"sent {result.sent} events, {len(result.replies)} replies, {len(result.errors)} errors")
    return 0


def cmd_send_audio(args: argparse.Namespace) -> int:
    import asyncio

    from .config import load_config
    from .sources.audio_stream import load_audio
    from .sources.replay import ingest_url

    cfg = load_config(args.config)
    audio = load_audio(Path(args.file))
    host = args.host or cfg.server.host
    port = args.port or cfg.server.port
    url = ingest_url(host, port, args.room, os.environ.get(cfg.server.ingest_token_env))
    print(f"streaming {len(audio) / 16000:.1f} s of {args.file} as the {args.speaker} into room {args.room!r} "
          "(real time)", flush=True)
    try:
        done = asyncio.run(_send_audio(url, audio, args.speaker))
    except OSError as e:
        raise CohostError(f"cannot reach the server at {url}: {e}") from None
    return 0 if done else 1


async def _send_audio(url: str, audio, speaker: str) -> bool:
    import asyncio
    import contextlib

    import websockets

    from .sources.audio_stream import send_audio

    async with websockets.connect(url, max_size=2**20) as ws:
        finished = asyncio.Event()
        errors = 0

        async def reader() -> None:
            nonlocal errors
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    msg = json.loads(raw)
                    kind = msg.get("type")
                    if kind == "heard":
                        print(f"🎙 {msg['text'] or '（没有听清）'}", flush=True)
                    elif kind == "reply":
                        print(f"💬 {msg['text']}", flush=True)
                    elif kind == "audio_end":
                        print(f"done: {msg.get('segments', 0)} utterances heard, "
                              f"{msg.get('dropped_frames', 0)} frames dropped", flush=True)
                        finished.set()
                    elif kind == "error":
                        errors += 1
                        print(f"!! {msg.get('error')}", file=sys.stderr, flush=True)

        read = asyncio.create_task(reader())
        await send_audio(ws, audio, speaker)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await finished.wait()
        read.cancel()
        return finished.is_set() and errors == 0


def cmd_bench_loop(args: argparse.Namespace) -> int:
    import asyncio

    from .bench_loop import bench_loop

    engine = _engine(args, args.catalog)
    _print_report(asyncio.run(bench_loop(engine, rate=args.rate, duration_s=args.duration,
                                                cancel_trials=args.cancel_trials, audio=args.audio)),
                  as_json=args.json)
    return 0


def _check_version_args(args: argparse.Namespace) -> None:
    """Versions are SQLite integers: past int64 one cannot even be looked up (an OverflowError traceback)."""
    for name, low in (("version", 1), ("base_version", 0)):
        value = getattr(args, name, None)
        if value is not None and not low <= value <= messages.INT64_MAX:
            raise CohostError(messages.int_range_text(name, value, args.lang, low))


def cmd_admin_token(args: argparse.Namespace) -> int:
    from .config import load_config
    from .server.app import admin_token_path, running_address, saved_admin_token

    cfg = load_config(args.config)
    path = admin_token_path(cfg)
    token = saved_admin_token(path, rotate=args.rotate)
    zh = args.lang == "zh"
    if args.rotate:
        print(f"已生成新的管理令牌，保存在 {path}（只有你能读）；重启 cohost run 后生效，旧的链接随即失效。" if zh else
              f"made a new admin token, saved in {path} (readable by you only); it takes effect when cohost run "
              "restarts, and old links stop working then.", file=sys.stderr)
    print(token)
    host, port = running_address(cfg) or (cfg.server.host, cfg.server.port)  # the port `run --port` chose
    print(f"/admin: http://{host}:{port}/admin#token={token}", file=sys.stderr)
    if os.environ.get(cfg.server.admin_token_env):
        print(f"注意：环境变量 {cfg.server.admin_token_env} 已设置，服务器用的是它，不是这个文件。" if zh else
              f"note: {cfg.server.admin_token_env} is set, and the server uses it instead of this file.",
              file=sys.stderr)
    return 0


def cmd_knowledge(args: argparse.Namespace) -> int:
    from .config import load_config
    from .knowledge import manage

    _check_version_args(args)
    cfg = load_config(args.config)
    shop = args.shop or cfg.store.shop
    if args.action == "import":
        return manage.import_file(cfg, Path(args.file), shop=shop, base_version=args.base_version,
                                  dry_run=args.dry_run, lang=args.lang)
    if args.action == "export":
        return manage.export(cfg, shop=shop, fmt=args.format, version=args.version,
                             output=Path(args.output) if args.output else None, lang=args.lang)
    if args.action == "versions":
        return manage.versions(cfg, shop=shop)
    if args.action == "rollback":
        return manage.rollback(cfg, shop=shop, version=args.version, base_version=args.base_version, lang=args.lang)
    return manage.gaps(cfg, shop=shop, days=args.days, draft=args.draft, limit=args.limit, lang=args.lang)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cohost", description="An AI co-host for e-commerce livestreams.")
    p.add_argument("--version", action="version", version=f"cohost {__version__}")
    p.add_argument("--config", help="config.yaml (default: ./config.yaml, else built-in defaults)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="check answer coverage and intent quality on labelled cases")
    evs = ev.add_subparsers(dest="what", required=True)
    f = evs.add_parser("faq", help="run FAQ cases through the answer engine")
    f.add_argument("--catalog", required=True)
    f.add_argument("--cases", required=True)
    f.add_argument("--output", required=True)
    f.add_argument("--explain", action="store_true", help="add the reason and intent to each output line")
    f.set_defaults(func=cmd_eval_faq)
    i = evs.add_parser("intent", help="classify intent cases")
    i.add_argument("--cases", required=True)
    i.add_argument("--output", required=True)
    i.set_defaults(func=cmd_eval_intent)

    b = sub.add_parser("bench", help="measure latency and throughput")
    bs = b.add_subparsers(dest="what", required=True)
    r = bs.add_parser("retrieval", help="bare encoder+faiss cost vs the full answer path")
    r.add_argument("--catalog")
    r.add_argument("-n", type=int, default=300, help="messages per measurement")
    r.add_argument("--batch", type=int, default=32)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_bench_retrieval)

    bd = bs.add_parser("decode", help="platform codecs: packets decoded per second")
    bd.add_argument("--seconds", type=float, default=1.0)
    bd.add_argument("--json", action="store_true")
    bd.set_defaults(func=cmd_bench_decode)

    lp = bs.add_parser("loop", help="drive the live server over loopback websockets at a message rate")
    lp.add_argument("--catalog")
    lp.add_argument("--rate", type=float, default=200.0, help="messages per second")
    lp.add_argument("--duration", type=float, default=10.0, help="seconds of traffic")
    lp.add_argument("--cancel-trials", type=int, default=40, help="product changes while the LLM streams")
    lp.add_argument("--audio", action="store_true", help="with the streamer's mic streaming into the room throughout")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_bench_loop)

    ba = bs.add_parser("asr", help="speech: real-time factor, 5 s clip time, end of speech → room, CER, memory")
    ba.add_argument("--catalog")
    ba.add_argument("--clips", help="folder of clips with NAME.txt or SOURCE.txt transcripts "
                                    "(default: ../shared/data/speech-zh)")
    ba.add_argument("--repeats", type=int, default=5, help="passes over each 5 s clip")
    ba.add_argument("--rounds", type=int, default=2, help="rounds of the streamed script (about 25 s each)")
    ba.add_argument("--json", action="store_true")
    ba.set_defaults(func=cmd_bench_asr)

    run = sub.add_parser("run", help="start the live server (ingest, overlay), optionally connected to a platform")
    run.add_argument("--catalog")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--platform", choices=["bilibili", "bilibili-open", "douyin", "relay"],
                     help="pull a live room's events and post the replies (credentials from the environment)")
    run.add_argument("--room", help="the platform's room: Bilibili room number, Douyin web_rid")
    run.add_argument("--code", help="bilibili-open: the streamer's 身份码")
    run.add_argument("--url", help="relay: the tool's websocket (default: the mapping's)")
    run.add_argument("--mapping", help="relay: a packaged mapping (douyin_barrage_grab, oba_live_tool) or a file")
    run.add_argument("--into", default="live", help="the cohost room the platform (and --mic) feeds (overlay ?room=)")
    run.add_argument("--mic", action="store_true", help="hear the streamer on a local microphone (pip install "
                                                         "'cohost[mic]')")
    run.add_argument("--mic-device", help="input device name or number (default: the system's)")
    run.add_argument("--max-chars", type=int, help="the platform's chat length for this account (Bilibili: 20)")
    run.add_argument("--console-port", type=int, default=8766,
                     help="where console tools fetch replies on platforms with no send route")
    run.set_defaults(func=cmd_run)

    dc = sub.add_parser("decode", help="print the events in a captured platform frame or capture file")
    dc.add_argument("file")
    dc.add_argument("--platform", required=True, choices=["bilibili", "douyin", "relay"])
    dc.add_argument("--mapping", help="relay: the mapping to apply")
    dc.set_defaults(func=cmd_decode)

    rp = sub.add_parser("replay", help="play a recorded session (JSON lines) into a room")
    rp.add_argument("file")
    rp.add_argument("--speed", type=float, default=1.0)
    rp.add_argument("--room", default="default")
    rp.add_argument("--host")
    rp.add_argument("--port", type=int)
    rp.set_defaults(func=cmd_replay)

    sa = sub.add_parser("send-audio", help="stream an audio file into a room in real time, as the streamer's mic")
    sa.add_argument("file", help="wav, mp3, ogg, flac or m4a (any rate; sent as 16 kHz mono PCM16)")
    sa.add_argument("--room", required=True)
    sa.add_argument("--speaker", choices=["streamer", "guest"], default="streamer")
    sa.add_argument("--host")
    sa.add_argument("--port", type=int)
    sa.set_defaults(func=cmd_send_audio)

    a = sub.add_parser("ask", help="answer questions typed on the command line or stdin, from the version "
                                   "`cohost run` serves (the store in config.yaml)")
    a.add_argument("text", nargs="*")
    a.add_argument("--catalog", help="answer from this catalog file instead of the store")
    a.add_argument("--shop", help="the store's shop (default: store.shop in config.yaml)")
    a.add_argument("--on-stage")
    a.add_argument("--user", default="观众")
    a.set_defaults(func=cmd_ask)

    cr = sub.add_parser("check-reply", help="run sentences through the gate every reply passes: pass, rewrite or "
                                            "block, with the rule (exit 1 unless all pass)")
    cr.add_argument("text", nargs="*", help="texts to check (default: one per line on stdin)")
    cr.add_argument("--catalog", help="catalog file (default: catalog in config.yaml)")
    cr.add_argument("--product", help="the product the text is about: its fields and FAQs are the facts")
    cr.add_argument("--kind", choices=["chat", "point"], default="chat",
                    help="point: a talking point, where an advertising-law word is a warning")
    cr.add_argument("--shop", help="whose extra words to use (default: store.shop in config.yaml)")
    cr.set_defaults(func=cmd_check_reply)

    k = sub.add_parser("knowledge", help="catalog versions in the store: import, export, versions, rollback, gaps")
    ks = k.add_subparsers(dest="action", required=True)
    ki = ks.add_parser("import", help="a catalog (.yaml/.json) or FAQs (.csv/.xlsx) as a new version")
    ki.add_argument("file")
    ki.add_argument("--dry-run", action="store_true", help="show problems or the diff, change nothing")
    ke = ks.add_parser("export", help="write the serving catalog (or --version N)")
    ke.add_argument("--format", choices=["yaml", "json", "csv", "xlsx"], default="yaml")
    ke.add_argument("--version", type=int)
    ke.add_argument("-o", "--output", help="file to write (default: stdout)")
    ks.add_parser("versions", help="list versions, newest first")
    kr = ks.add_parser("rollback", help="make an earlier version current again (as a new version)")
    kr.add_argument("version", type=int)
    kg = ks.add_parser("gaps", help="questions viewers asked that nothing answered, clustered")
    kg.add_argument("--days", type=float)
    kg.add_argument("--draft", metavar="CLUSTER", help="turn this cluster into a draft FAQ")
    kg.add_argument("--limit", type=int, default=30)
    for sp in (ki, ke, kr, kg, ks.choices["versions"]):
        sp.add_argument("--shop", help="shop id (default: store.shop in config.yaml)")
    for sp in (ki, kr):
        sp.add_argument("--base-version", type=int,
                        help="refuse if the shop has moved past this version (someone else changed it)")
    k.set_defaults(func=cmd_knowledge)

    d = sub.add_parser("demo", help="start the server, replay the demo recording into a room, print replies; "
                                    "the server stays up until Ctrl-C")
    d.add_argument("--catalog")
    d.add_argument("--speed", type=float, default=5.0, help="replay speed (1.0 = real time; the recording is 17 min)")
    d.add_argument("--port", type=int, default=None)
    d.add_argument("--room", default="demo")
    d.add_argument("--terminal", action="store_true", help="only answer a few sample danmaku, no server")
    d.add_argument("--exit-after-replay", action="store_true",
                   help="stop the server when the replay ends (default: it stays up until Ctrl-C)")
    d.set_defaults(func=cmd_demo)

    at = sub.add_parser("admin-token", help="print the admin token `cohost run` keeps in the store's directory "
                                            "(made when there is none); --rotate replaces it")
    at.add_argument("--rotate", action="store_true", help="make a new token: old admin links stop working")
    at.set_defaults(func=cmd_admin_token)
    _add_lang(p)
    return p


def _add_lang(parser: argparse.ArgumentParser, *, top: bool = True) -> None:
    """--lang on the top level and on every subcommand, so that it may follow the command too."""
    parser.add_argument("--lang", choices=messages.LANGS,
                        default=os.environ.get("COHOST_LANG", messages.DEFAULT_LANG) if top else argparse.SUPPRESS,
                        help="language of messages: zh (default, or $COHOST_LANG) or en")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in dict.fromkeys(action.choices.values()):
                _add_lang(sp, top=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    lang = args.lang if args.lang in messages.LANGS else messages.DEFAULT_LANG
    try:
        return int(args.func(args) or 0)
    except CohostError as e:  # the same words /admin shows for the same problem
        print(messages.text("error", lang, message=messages.error_text(e, lang)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
