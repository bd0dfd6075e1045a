"""A live metrics dashboard for a jetflow stream: ``jetflow dashboard`` serves it.

- :class:`DashboardStats` — the stats engine (totals, rates, top collections, lag) as JSON
  snapshots; usable on its own
- :class:`ServerMetricsPoller` — scrapes a ``jetflow serve`` ``/metrics`` endpoint
- :class:`DashboardServer` — the page, ``/snapshot.json`` and the ``/ws`` push
- :class:`Dashboard` — all three on the current event loop

See ``docs/dashboard.md``.
"""

from jetflow.dashboard.app import Dashboard
from jetflow.dashboard.server import DashboardServer
from jetflow.dashboard.server_metrics import ServerMetricsPoller, parse_metrics
from jetflow.dashboard.stats import DashboardStats, StatsSink

__all__ = [
    "Dashboard",
    "DashboardServer",
    "DashboardStats",
    "ServerMetricsPoller",
    "StatsSink",
    "parse_metrics",
]
