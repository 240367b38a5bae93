"""The per-socket writer on its own: order, overflow, stalls, withdrawal. (Over real sockets: test_live_room.py.)"""

from __future__ import annotations

import asyncio

from cohost.server.writer import CLOSE_TRY_AGAIN, SocketWriter


class Peer:
    """The writer's view of a websocket: send_text waits while the peer is not reading."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.reading.set()
        self.got: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def send_text(self, frame: str) -> None:
        await self.reading.wait()
        self.got.append(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.reading.wait()
        self.closed = (code, reason)


def run(coro):
    return asyncio.run(coro)


def test_frames_go_out_in_order_and_report_it():
    async def main():
        peer = Peer()
        w = SocketWriter(peer, name="t")  # type: ignore[arg-type]
        w.start()
        results = await asyncio.gather(*(w.send(f"f{i}") for i in range(5)))
        await w.stop()
        return peer.got, results
    got, results = run(main())
    assert got == [f"f{i}" for i in range(5)] and all(results)


def test_a_full_queue_closes_the_socket_with_1013_and_fails_what_waits():
    async def main():
        peer = Peer()
        peer.reading.clear()
        closed = []
        w = SocketWriter(peer, name="t", max_queue=3, send_timeout_s=30, on_closed=closed.append)  # type: ignore[arg-type]
        w.start()
        futs = [w.send(f"f{i}") for i in range(4)]
        await asyncio.sleep(0)
        peer.reading.set()  # the close frame can be written once the peer reads again
        await w.stop()
        return peer, futs, closed, w
    peer, futs, closed, w = run(main())
    assert [f.result() for f in futs] == [False] * 4
    assert closed == [w] and peer.closed is not None and peer.closed[0] == CLOSE_TRY_AGAIN
    assert "too slow" in peer.closed[1]


def test_a_stalled_send_closes_the_socket():
    async def main():
        peer = Peer()
        peer.reading.clear()
        w = SocketWriter(peer, name="t", send_timeout_s=0.05)  # type: ignore[arg-type]
        w.start()
        fut = w.send("f0")
        assert not await fut
        assert w.closed and w.close_code == CLOSE_TRY_AGAIN and "stalled" in w.close_reason
        await w.stop()
    run(main())


def test_an_overlay_writer_keeps_only_the_newest_state():
    async def main():
        peer = Peer()
        peer.reading.clear()
        w = SocketWriter(peer, name="t", latest_only=True, send_timeout_s=30)  # type: ignore[arg-type]
        w.start()
        first = w.send("s0")
        await asyncio.sleep(0)  # s0 is being written
        later = [w.send(f"s{i}") for i in range(1, 100)]
        assert w.queued == 1
        peer.reading.set()
        assert await later[-1]
        await w.stop()
        return peer.got, first, later
    got, first, later = run(main())
    assert got == ["s0", "s99"] and not any(f.result() for f in later[:-1])


def test_a_withdrawn_frame_never_goes_out():
    async def main():
        peer = Peer()
        peer.reading.clear()
        w = SocketWriter(peer, name="t", send_timeout_s=30)  # type: ignore[arg-type]
        w.start()
        head = w.send("head")
        await asyncio.sleep(0)
        reply = w.send("reply")
        assert not w.withdraw(head)  # already being written
        assert w.withdraw(reply)
        peer.reading.set()
        assert await head
        await w.stop()
        return peer.got, reply
    got, reply = run(main())
    assert got == ["head"] and reply.result() is False
