"""Every command the README and docs/ mark runnable runs as written, against the sandbox.

A fenced shell block directly under a `<!-- runnable -->` line is run with
`bash -euo pipefail` in a scratch directory laid out like the checkout (its `scrapy.cfg`
and `examples/`, `.venv` pointing at the environment running the tests), one block after
the other per file, so a block may read what an earlier one of the same file wrote. A
block that exits non-zero fails the test. Blocks without the marker are shown, not run
(the real API, Redis, commands that take minutes). The rest of this file checks the docs
themselves: the run summary example is the demo's real summary, the README's size and
required commands, links that resolve, no link into paths outside the repository (the
error lines the docs quote: tests/unit/test_docs_messages.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.crawl_helpers import REPO

MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), REPO / "benchmarks" / "RESULTS.md"])
TEST_COMMAND = ".venv/bin/ruff check . && .venv/bin/python -m pytest -q -n 4"
DEMO = ".venv/bin/scrapy crawl image_search -a urls_file=examples/images.txt -s TMAPI_SANDBOX=true -O products.jsonl"


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of each fenced shell block whose opening fence follows MARKER."""
    blocks = []
    for match in FENCE.finditer(text):
        lines = text[: match.start()].split("\n")
        if len(lines) >= 2 and lines[-2].strip() == MARKER:
            assert match.group(1) in ("bash", "sh", "console", ""), f"a runnable block must be shell: {match.group(1)}"
            blocks.append((text.count("\n", 0, match.start()) + 1, match.group(2)))
    return blocks


def test_the_block_finder_sees_only_marked_blocks() -> None:
    text = f"a\n{MARKER}\n```bash\necho one\n```\n\n```bash\necho two\n```\n{MARKER}\n\n```bash\necho three\n```\n"
    assert runnable_blocks(text) == [(3, "echo one\n")]  # a blank line between marker and fence: not marked


def run_block(body: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`bash -euo pipefail -c BODY` in its own process group, output to files (a server the
    block started in the background cannot hold a pipe open); whatever the block left
    running is ended with it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", body], cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
        try:
            returncode = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, returncode, out.read(), err.read())


def test_a_failing_line_anywhere_in_a_block_fails_it(tmp_path: Path) -> None:
    for body in ("false\necho after\n", "false | cat\n", "echo $UNSET_VARIABLE\n", "true\n"):
        assert (run_block(body, tmp_path, {"PATH": os.environ["PATH"]}).returncode == 0) is (body == "true\n")


def _scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy2(REPO / "scrapy.cfg", work / "scrapy.cfg")
    shutil.copytree(REPO / "examples", work / "examples")
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_", "SCRAPY_"))}
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return work, env


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if runnable_blocks(d.read_text(encoding="utf-8"))], ids=lambda d: d.name
)
def test_runnable_blocks_run_as_written(doc: Path, tmp_path: Path) -> None:
    work, env = _scratch(tmp_path)
    for line, body in runnable_blocks(doc.read_text(encoding="utf-8")):
        proc = run_block(body, work, env)
        where = f"{doc.relative_to(REPO)}:{line}"
        assert proc.returncode == 0, (
            f"{where} exited {proc.returncode}\n{body}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
        )
        assert "Traceback" not in proc.stderr, f"{where}\n{proc.stderr[-3000:]}"


def test_the_run_summary_example_is_the_demos_summary(tmp_path: Path) -> None:
    """docs/running-jobs.md's summary example, key for key and value for value (times aside;
    the images it shows are some of the real ones), from the demo crawl it follows."""
    text = (REPO / "docs" / "running-jobs.md").read_text(encoding="utf-8")
    [example] = [json.loads(m[2]) for m in FENCE.finditer(text) if m[1] == "json" and '"totals"' in m[2]]
    work, env = _scratch(tmp_path)
    proc = run_block(DEMO, work, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    real = json.loads((work / "products.summary.json").read_text(encoding="utf-8"))
    assert list(example) == list(real)
    for key in ("started_at", "finished_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", example.pop(key)) and real.pop(key)
    shown = example.pop("images")
    assert shown and all(image in real["images"] for image in shown), real["images"]
    real.pop("images")
    assert example == real


def test_the_readme_is_a_front_door() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert TEST_COMMAND in text and TEST_COMMAND in (REPO / ".ci" / "run").read_text()
    assert "bash .ci/run" in text
    assert DEMO in [body.strip() for _, body in runnable_blocks(text)], "the demo crawl must be a runnable block"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_links_resolve_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert not re.search(r"(?<![\w/.-])(\.\./)?shared/", text), (
        f"{doc.name} mentions shared/, which is not in the repository"
    )
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path == "settings.md" or path.endswith("docs/settings.md"):
            continue  # generated from the settings registry
        assert (doc.parent / path).exists(), f"{doc.relative_to(REPO)} links to {target}, which does not exist"
