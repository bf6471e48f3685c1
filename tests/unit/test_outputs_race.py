"""Workers started together check their feeds in one new folder at the same moment: the one
that finds the folder made meanwhile by another goes on (a real race, between threads)."""

from __future__ import annotations

import threading
from pathlib import Path

from tmapi_spiders.crawl import outputs


def test_outputs_in_one_new_folder_checked_at_once_all_pass(tmp_path: Path) -> None:
    for round_ in range(40):
        folder = tmp_path / f"round-{round_}" / "out" / "deep"
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def check(
            n: int, folder: Path = folder, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors
        ) -> None:
            barrier.wait()
            try:
                outputs.probe(str(folder / f"products-w{n}.jsonl"), [])
            except OSError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], errors
        assert folder.is_dir() and list(folder.iterdir()) == []  # the probes left nothing behind
