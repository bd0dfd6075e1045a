"""The baseline for the fan-out benchmark: websockets' own ``broadcast()`` of a shared payload.

    python bench/_broadcast_server.py PORT

Prints ``listening``; on ``emit N`` sends N event payloads to every connection, one
``broadcast()`` each, and prints the CPU seconds that took as JSON; exits on ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from websockets.asyncio.server import ServerConnection, broadcast, serve

from jetflow.codec.firehose import FirehoseDecoder
from jetflow.testing import SyntheticFirehose


async def main() -> None:
    port = int(sys.argv[1])
    connections: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        connections.add(connection)
        try:
            await connection.wait_closed()
        finally:
            connections.discard(connection)

    decoder = FirehoseDecoder()
    payloads = [
        e.json.decode() for f in SyntheticFirehose(seed=3).frames(3000) for e in decoder.decode(f)
    ]
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        print("listening", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        while line := (await reader.readline()).decode().strip():
            if line.startswith("emit"):
                count = int(line.split()[1])
                started = time.process_time()
                for start in range(0, count, 40):  # the network's pace: 2,000 events/s
                    for payload in payloads[start : min(start + 40, count)]:
                        broadcast(connections, payload)
                    await asyncio.sleep(0.02)
                while any(c.transport.get_write_buffer_size() for c in connections):
                    await asyncio.sleep(0.01)
                print(json.dumps({"cpu": time.process_time() - started}), flush=True)
            elif line == "quit":
                break


if __name__ == "__main__":
    asyncio.run(main())
