"""Douyin (抖音) live rooms: a sans-I/O codec for the webcast push framing and a thin asyncio client.

    from cohost.sources.douyin import DouyinClient
    client = DouyinClient(web_rid, signer=my_signer, product_ids={...}, links={...})

proto.py: protobuf wire format; messages.py: our schema of the webcast messages and builders;
codec.py: frames → events (DouyinCodec), decode_file, bench_decode; client.py: DouyinClient.
"""

from .client import DEFAULT_HOSTS, DEFAULT_LIVE_BASE, Bootstrap, BootstrapError, DouyinClient, Signer, x_ms_stub
from .codec import HEARTBEAT, DecodeError, DouyinCodec, Signal, bench_decode, decode_file

__all__ = ["DEFAULT_HOSTS", "DEFAULT_LIVE_BASE", "HEARTBEAT", "Bootstrap", "BootstrapError", "DecodeError",
           "DouyinClient", "DouyinCodec", "Signal", "Signer", "bench_decode", "decode_file", "x_ms_stub"]
