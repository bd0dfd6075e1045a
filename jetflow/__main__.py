"""``python -m jetflow`` runs the command line."""

from jetflow.cli import entry_point

entry_point()
