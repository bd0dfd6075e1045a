"""Test doubles shipped to users: a fake relay, a collecting sink, a synthetic firehose.

jetflow's own tests use exactly these, so they are kept honest: real websockets on 127.0.0.1,
real frames with real CIDs and CAR files.
"""

from jetflow.testing.collect import CollectingSink
from jetflow.testing.relay import FakeRelay, RelayConnection
from jetflow.testing.synth import SyntheticFirehose, write_capture

__all__ = ["CollectingSink", "FakeRelay", "RelayConnection", "SyntheticFirehose", "write_capture"]
