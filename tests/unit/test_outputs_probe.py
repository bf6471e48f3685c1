"""The pre-flight write probe: an output that cannot take a whole block fails before the first paid call."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tmapi_spiders.crawl.outputs import cause, whole

PROBE = "import sys; from tmapi_spiders.crawl import outputs; outputs.probe(sys.argv[1], []); print('probed')"


def _small_files() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # the kernel takes 1,000 bytes of a 4,096-byte write


def test_a_short_write_is_not_taken_for_room(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out)], preexec_fn=_small_files, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "File too large" in done.stderr, (done.stdout, done.stderr[-500:])
    assert not out.exists()  # the probe's own block is removed even when it fails


def test_a_file_with_room_is_probed_and_left_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "probed", done.stderr[-500:]
    assert not out.exists()


def test_a_file_where_a_whole_outputs_folder_should_be_is_named_not_file_exists(tmp_path: Path) -> None:
    """os.makedirs (report, sheet and diff write through `whole`) says EEXIST for a file standing
    where the output's folder should be: the one line names that file, as the crawl's check does."""
    blocker = tmp_path / "run.jsonl"
    blocker.write_text("")
    target = blocker / "run.xlsx"
    with pytest.raises(OSError) as raised, whole(target):
        pass
    assert cause(raised.value, str(target)) == f"Not a directory: {blocker} is a file, not a folder"
