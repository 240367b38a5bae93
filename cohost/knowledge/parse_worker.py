"""A separate process that parses and validates uploads, with a memory and a time budget.

Parsing a large YAML file and validating it with pydantic is CPU work that holds the interpreter lock
for seconds: done in the server's process it stalls every live room (an 11 MB preview once stopped
/healthz for 18 s and left the server 4 GB larger). Here it runs in one long-lived child process:

- the child sets ``RLIMIT_AS`` (its address space) to the memory budget, so an input that needs more
  gets a MemoryError there, which comes back as :class:`ParseBudgetExceeded`, and the child is recycled;
- the parent waits on a socket (no interpreter lock held) and kills the child past the time budget;
- a child that dies (killed, crashed, out of memory) is replaced on the next call;
- a child whose resident memory grew past ``recycle_rss_bytes`` is replaced after the call, so one big
  upload does not keep its memory for the life of the server;
- the child runs at nice +10: a room's encoder threads get the CPU first.

A call is ``worker.run(fn, *args)`` where ``fn`` is a module-level function (pickled by reference) run in
the child. A CatalogError raised there comes back as a CatalogError with the same problems.

Run as ``python -m cohost.knowledge.parse_worker FD MEMORY_BYTES`` by :class:`ParseWorker` only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from ..errors import CatalogError, Problem

T = TypeVar("T")

PARSE_MEMORY_BYTES = 2 * 1024 ** 3      # the child's whole address space (interpreter and libraries: ~0.2 GB)
PARSE_TIME_S = 120.0                    # one upload; a 6 MB YAML catalog at the item caps takes ~20 s here
RECYCLE_RSS_BYTES = 400 * 1024 ** 2     # a child that grew past this is replaced after the call
START_TIMEOUT_S = 60.0                  # imports on a busy 2-core machine
_NICE = 10


class UploadTooLarge(CatalogError):
    """An upload over a cap or a budget: answered 413 (not 422) with the problem naming the limit."""

    status = 413


class ParseBudgetExceeded(UploadTooLarge):
    """Parsing needed more memory or time than the parse worker may use."""


class ParseWorkerCrashed(CatalogError):
    """The parse worker died during the call (killed, or a crash in a parser library)."""


def _problem(source: str, message: str) -> list[Problem]:
    return [Problem(source, "(file)", None, message)]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: never recycle for size
        return 0


class ParseWorker:
    """One reusable child process; calls are serialised (one upload parses at a time)."""

    def __init__(self, *, memory_bytes: int = PARSE_MEMORY_BYTES, time_s: float = PARSE_TIME_S,
                 recycle_rss_bytes: int = RECYCLE_RSS_BYTES):
        self.memory_bytes = memory_bytes
        self.time_s = time_s
        self.recycle_rss_bytes = recycle_rss_bytes
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.busy = False        # a call is in the child now (tests kill it then)
        self.started = 0         # children started so far
        self.last_rss = 0        # the child's resident bytes after its last call

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def run(self, fn: Callable[..., T], *args: Any, source: str = "(upload)") -> T:
        """fn(*args) in the child. Raises what fn raised (CatalogError), ParseBudgetExceeded past a budget,
        ParseWorkerCrashed when the child died."""
        with self._lock:
            conn = self._ensure()
            request = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
            self.busy = True
            try:
                try:
                    conn.send_bytes(request)
                    # The budget starts when the child has the request; poll() waits without the GIL.
                    if not conn.poll(self.time_s):
                        self._stop()
                        raise ParseBudgetExceeded(_problem(source, f"parsing took longer than the {self.time_s:g} s "
                                                                   "limit; the file was not processed. Split it into "
                                                                   "smaller files and upload them one by one"))
                    reply = conn.recv_bytes()
                except (EOFError, OSError):
                    code = self._stop()
                    raise ParseWorkerCrashed(_problem(source, f"the parse process exited unexpectedly (exit code "
                                                              f"{code}); the file was not processed. Try again, and "
                                                              "split the file if it happens again")) from None
            finally:
                self.busy = False
        status, value, rss = pickle.loads(reply)
        self.last_rss = rss
        if status == "memory" or (self.recycle_rss_bytes and rss > self.recycle_rss_bytes):
            with self._lock:
                self._stop()
        if status == "ok":
            return value  # type: ignore[no-any-return]
        if status == "memory":
            mb = self.memory_bytes // 1024 ** 2
            raise ParseBudgetExceeded(_problem(source, f"parsing needs more than the {mb} MB memory limit; the file "
                                                       "was not processed. Split it into smaller files and upload "
                                                       "them one by one"))
        if status == "error":
            cls, problems = value
            raise {"UploadTooLarge": UploadTooLarge, "ParseBudgetExceeded": ParseBudgetExceeded}.get(
                cls, CatalogError)(problems)
        raise RuntimeError(f"parse worker: {value}")

    async def arun(self, fn: Callable[..., T], *args: Any, source: str = "(upload)") -> T:
        """run() from the event loop, waiting on a daemon thread of its own: never one of the default pool's
        threads (the rooms' store reads share them), and never one that keeps the server from exiting."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if done.cancelled():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)  # type: ignore[arg-type]

        def wait() -> None:
            try:
                outcome: tuple[T | None, BaseException | None] = (self.run(fn, *args, source=source), None)
            except BaseException as e:  # handed to the awaiting task, which raises it
                outcome = (None, e)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=wait, name="cohost-parse-wait", daemon=True).start()
        return await done

    def start(self) -> None:
        """Start the child now (it is otherwise started by the first call)."""
        with self._lock:
            self._ensure()

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the child ---------------------------------------------------------------------------------------

    def _ensure(self) -> Connection:
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            return self._conn
        self._stop()
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen([sys.executable, "-m", __name__, str(theirs.fileno()), str(self.memory_bytes)],
                                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        self._proc, self._conn = proc, conn
        self.started += 1
        # The child says "ready" once its imports are done, so that they are not counted in a call's budget.
        if not conn.poll(START_TIMEOUT_S) or self._ready(conn) != b"ready":
            self._stop()
            raise ParseWorkerCrashed(_problem("(upload)", "解析进程无法启动，文件没有被处理；请稍后重试"))
        return conn

    @staticmethod
    def _ready(conn: Connection) -> bytes:
        try:
            return conn.recv_bytes()
        except (EOFError, OSError):
            return b""

    def _stop(self) -> int | None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        return proc.returncode


_default: ParseWorker | None = None
_default_lock = threading.Lock()


def default_worker() -> ParseWorker:
    """The process-wide worker that uploads use (the server and the CLI)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ParseWorker()
            atexit.register(_default.close)
        return _default


def set_default_worker(worker: ParseWorker | None) -> ParseWorker | None:
    """Replace the process-wide worker (tests use other budgets); returns the one it replaces."""
    global _default
    with _default_lock:
        old, _default = _default, worker
        return old


def _serve(fd: int, memory_bytes: int) -> None:
    conn = Connection(fd)
    with contextlib.suppress(OSError):
        os.nice(_NICE)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ImportError, ValueError, OSError):  # not Linux/macOS: the time budget still holds
        pass
    from . import uploads  # noqa: F401  (the usual jobs' imports, before "ready")

    conn.send_bytes(b"ready")
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is gone
        reply: tuple[str, Any, int]
        try:
            fn, args = pickle.loads(request)
            del request
            reply = ("ok", fn(*args), 0)
        except MemoryError:
            reply = ("memory", None, 0)
        except CatalogError as e:
            reply = ("error", (type(e).__name__, e.problems), 0)
        except RecursionError:
            reply = ("error", ("CatalogError", _problem("(file)", "嵌套层数太多，无法读取")), 0)
        except Exception:  # a bug: reported as one, with the child's traceback
            reply = ("bug", traceback.format_exc(limit=8), 0)
        try:
            data = pickle.dumps((reply[0], reply[1], _rss_bytes()), protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            data = pickle.dumps(("memory", None, 0))
        del reply
        conn.send_bytes(data)
        del data


if __name__ == "__main__":
    # stdout stays free for nothing: everything goes over the socket, messages to stderr.
    _serve(int(sys.argv[1]), int(sys.argv[2]))
