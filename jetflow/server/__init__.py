"""``jetflow serve``: a drop-in Jetstream v1 server (spec §2–§13) built from jetflow's parts.

- :mod:`~jetflow.server.app` — wiring, HTTP routes, lifecycle, follower processes
- :mod:`~jetflow.server.ingest` — relay → store → fan-out, atomic cursor
- :mod:`~jetflow.server.hub` — indexed fan-out
- :mod:`~jetflow.server.subscriber` — one connection, batched writes, slow-consumer policy
- :mod:`~jetflow.server.replay` — gapless cursor replay → live
- :mod:`~jetflow.server.options` — query parameters and ``options_update``
- :mod:`~jetflow.server.ratelimit` — per-address token buckets, trusted proxies
- :mod:`~jetflow.server.config` — options and environment variables
- :mod:`~jetflow.server.telemetry` — metrics and structured logs
"""

from jetflow.server.app import JetstreamServer
from jetflow.server.config import ServeConfig, load_config

__all__ = ["JetstreamServer", "ServeConfig", "load_config"]
