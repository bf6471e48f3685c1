"""Scrapy extensions for operators: live progress (progress.py) and the run summary (summary.py)."""
