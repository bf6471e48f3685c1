"""Watching a list over time: what moved between two runs (diff.py), the changes written
as JSON Lines, HTML or XLSX (output.py), a history directory for scheduled runs
(history.py) and alerts sent on to a webhook (alerts.py). docs/watch.md."""
