"""A TCP relay that holds every byte a client sends for a fixed delay: a registry on loopback made
as far away as real ones are (20-150 ms), the way a network is, below HTTP.

The fault proxy (tests/support/faultproxy.py) can add a latency too, but it parses and forwards
each request in Python threads, and on a busy machine that adds milliseconds of its own to every
request; this relay only moves bytes, on one event loop, so a request costs the delay plus what
the registry behind it takes.

    python -m tests.support.slownet 127.0.0.1:5000 --delay 0.05   # prints the relay's host:port
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk sent `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        while data := await reader.read(65536):
            chunks.put_nowait((loop.time() + delay, data))
        chunks.put_nowait((loop.time() + delay, b""))

    async def send() -> None:
        while True:
            due, data = await chunks.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(receive(), send())


async def _serve(upstream: tuple[str, int], delay: float) -> None:
    async def connection(client_reader, client_writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, upstream_writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(
                _relay(client_reader, upstream_writer, delay),  # requests: the delayed way
                _relay(upstream_reader, client_writer, 0.0),  # answers: as they come
            )
        except (OSError, asyncio.IncompleteReadError):
            pass  # one side went away: so does the other
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, backlog=512)
    print(f"127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.slownet")
    parser.add_argument("upstream", help="host:port of the registry")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds each request is held")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve((host, int(port)), args.delay))


if __name__ == "__main__":
    sys.exit(main())
