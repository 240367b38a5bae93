"""Bilibili live rooms (web danmaku protocol): a sans-I/O codec, a reconnecting client, and the sink in
cohost.sinks.bilibili that posts replies.

    codec.py        framing, bundles (zlib, brotli), encoders for auth and heartbeat; BilibiliCodec
    commands.py     DANMU_MSG, SEND_GIFT... to the one event model
    protobuf.py     the wire-format reader for the protobuf payloads (INTERACT_WORD_V2, SEND_GIFT_V2)
    items.py        what the codec yields besides events (AuthReply, HeartbeatReply, StreamStatus, Notice,
                    DecodeError)
    client.py       BilibiliClient: bootstrap, connect, auth, heartbeat, reconnect, health
    credentials.py  the account, from COHOST_BILIBILI_SESSDATA / _BILI_JCT / _BUVID3
    builders.py     command payloads shaped like the server's, for the fake server, tests and benchmarks
"""

from .client import BilibiliClient, Bootstrap, BootstrapFailed, Host, WbiSigner
from .codec import BilibiliCodec, Limits, bench_decode, decode_file, encode_auth, encode_heartbeat, encode_packet
from .credentials import BilibiliCredentials
from .items import AuthReply, DecodeError, HeartbeatReply, Item, Notice, StreamStatus, item_cmd

__all__ = ["AuthReply", "BilibiliClient", "BilibiliCodec", "BilibiliCredentials", "Bootstrap", "BootstrapFailed",
           "DecodeError", "HeartbeatReply", "Host", "Item", "Limits", "Notice", "StreamStatus", "WbiSigner",
           "bench_decode", "decode_file", "encode_auth", "encode_heartbeat", "encode_packet", "item_cmd"]
