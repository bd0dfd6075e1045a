"""Scale-out on NATS JetStream: one shared, retained, deduplicated log for many jetflow nodes.

- :mod:`~jetflow.broker.subjects` — the subject scheme (collections as subject tokens)
- :mod:`~jetflow.broker.messages` — payload (exact Jetstream JSON), headers, message ids
- :mod:`~jetflow.broker.connection` — URLs, connecting with clear errors, the stream
- :mod:`~jetflow.broker.publisher` — pipelined publishing, ordered and fenced for one writer
- :mod:`~jetflow.broker.reader` — seek by ``time_us``, pull consumers that resume themselves
- :mod:`~jetflow.broker.ingest` — ``jetflow ingest``: lease, epoch fence, takeover
- :mod:`~jetflow.broker.serve` — ``jetflow serve --store nats://``: the server backend
- :mod:`~jetflow.broker.checkpoint` — cursor checkpoints in NATS KV
- :mod:`~jetflow.broker.testing` — a real nats-server for tests and benchmarks

The user-facing pieces are :func:`jetflow.sources.nats` and :func:`jetflow.sinks.nats`; see
``docs/scaleout.md`` for the topology and the runbook. Needs the ``nats`` extra
(``pip install 'jetflow[nats]'``).
"""

from jetflow.broker.connection import BrokerURL
from jetflow.broker.subjects import DEFAULT_PREFIX, DEFAULT_STREAM, Subjects

__all__ = ["DEFAULT_PREFIX", "DEFAULT_STREAM", "BrokerURL", "Subjects"]
