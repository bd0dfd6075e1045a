"""Sans-I/O codec: bytes in, values out. No asyncio, no websockets.

- :mod:`~jetflow.codec.frame` — split a frame into header and body
- :mod:`~jetflow.codec.firehose` — frame → Jetstream events (spec §9)
- :mod:`~jetflow.codec.record` — record block → Jetstream's record JSON
- :mod:`~jetflow.codec.cbor` — strict DAG-CBOR reader and canonical writer
- :mod:`~jetflow.codec.car` — CAR framing, blocks by CID, CAR writer
- :mod:`~jetflow.codec.jsonfmt` — Go-compatible JSON escaping
- :mod:`~jetflow.codec.zstd` — per-event zstd frames with dictionaries
- :mod:`~jetflow.codec.capture` — jetflow's capture file framing
- :mod:`~jetflow.codec.clock` — the monotonic ``time_us`` clock
"""
