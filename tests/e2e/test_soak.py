"""Fault soak in CI: 300+ pages with 10 % of calls failing in every injected way.

The full 2,000-page run is `benchmarks/fault_soak.py`; this is the same code, smaller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fault_soak import run_soak, table
from tmapi_spiders.sandbox.faults import FAULT_KINDS


@pytest.mark.slow
def test_fault_soak_delivers_every_item_once_for_no_more_than_the_retries(tmp_path: Path) -> None:
    result = run_soak(tmp_path, pages=300, fault_rate=0.1, timeout=1.0, seed=1)
    report = table(result)
    print(report)
    clean, faulty = result.clean, result.faulty
    assert clean.returncode == 0 and faulty.returncode == 0, faulty.stderr[-2000:]
    assert clean.stats["tmapi/pages"] >= 300
    assert not clean.failures
    # Every kind of fault was really injected, so the run proves something about each.
    assert set(result.faults) == set(FAULT_KINDS), report
    assert sum(result.faults.values()) >= 25, report
    # All that the fault-free run delivered, nothing else, once, with the same content.
    assert len(result.expected) == len(clean.products) > 5000
    assert result.missing == set(), report
    assert result.unexpected == set(), report
    assert result.duplicates == 0
    assert result.changed == 0
    assert faulty.failures == []
    # Paid calls: at most the fault-free run's plus one per retry a fault forced.
    assert result.retries <= sum(result.faults.values())
    assert result.faulty_calls <= result.clean_calls + result.retries, report
    # Scrapy's retry counters saw the timeouts (slow) and the bad answers.
    assert faulty.stats.get("retry/reason_count/scrapy.exceptions.DownloadTimeoutError", 0) >= result.faults["slow"]
    assert result.ok
