"""The `cohost` command line: wiring only; the work lives in the stage modules."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__
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
    lat = sorted(r["latency_ms"] for r in results) or [0.0]
    print(f"{len(results)} cases: {answered} answered, {len(results) - answered} abstained; "
          f"latency p50 {lat[len(lat) // 2]:.1f} ms, p95 {lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0]:.1f} ms")
    score = score_faq(cases, results)
    if score:
        print(f"labelled: precision {score.precision:.3f} ({score.correct}/{score.answered}), "
              f"recall {score.recall:.3f} ({score.correct}/{score.answerable}), "
              f"abstention on unanswerable {score.abstention:.3f} "
              f"({score.abstained_on_unanswerable}/{score.unanswerable})")
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


def cmd_ask(args: argparse.Namespace) -> int:
    from .engine import Message

    engine = _engine(args, args.catalog)
    texts = args.text or [line.strip() for line in sys.stdin if line.strip()]
    for text in texts:
        d = engine.answer(Message(text, user=args.user, on_stage=args.on_stage))
        print(f"{text}\n  → {d.reply or '(silent)'}   [{d.intent.label}; {d.reason}]")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from .demo import run_live_demo, run_terminal_demo

    engine = _engine(args, args.catalog)
    if args.terminal:
        return run_terminal_demo(engine)
    return asyncio.run(run_live_demo(engine, speed=args.speed, port=args.port, room=args.room))


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from .live import serve_forever

    engine = _engine(args, args.catalog)
    return asyncio.run(serve_forever(engine, host=args.host, port=args.port))


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
        else:
            print(f"!! {msg.get('error')}", flush=True)

    try:
        result = asyncio.run(replay(url, events, speed=args.speed, on_message=show))
    except OSError as e:
        raise CohostError(f"cannot reach the server at {url}: {e}") from None
    print(f"sent {result.sent} events, {len(result.replies)} replies, {len(result.errors)} errors")
    return 0


def cmd_bench_loop(args: argparse.Namespace) -> int:
    import asyncio

    from .bench_loop import bench_loop

    engine = _engine(args, args.catalog)
    _print_report(asyncio.run(bench_loop(engine, rate=args.rate, duration_s=args.duration)), as_json=args.json)
    return 0


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

    lp = bs.add_parser("loop", help="drive the live server over loopback websockets at a message rate")
    lp.add_argument("--catalog")
    lp.add_argument("--rate", type=float, default=200.0, help="messages per second")
    lp.add_argument("--duration", type=float, default=10.0, help="seconds of traffic")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_bench_loop)

    run = sub.add_parser("run", help="start the live server (ingest, overlay)")
    run.add_argument("--catalog")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="play a recorded session (JSON lines) into a room")
    rp.add_argument("file")
    rp.add_argument("--speed", type=float, default=1.0)
    rp.add_argument("--room", default="default")
    rp.add_argument("--host")
    rp.add_argument("--port", type=int)
    rp.set_defaults(func=cmd_replay)

    a = sub.add_parser("ask", help="answer questions typed on the command line or stdin")
    a.add_argument("text", nargs="*")
    a.add_argument("--catalog")
    a.add_argument("--on-stage")
    a.add_argument("--user", default="观众")
    a.set_defaults(func=cmd_ask)

    d = sub.add_parser("demo", help="start the server, replay the demo recording into a room, print replies")
    d.add_argument("--catalog")
    d.add_argument("--speed", type=float, default=5.0, help="replay speed (1.0 = real time; the recording is 17 min)")
    d.add_argument("--port", type=int, default=None)
    d.add_argument("--room", default="demo")
    d.add_argument("--terminal", action="store_true", help="only answer a few sample danmaku, no server")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args.func(args) or 0)
    except CohostError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
