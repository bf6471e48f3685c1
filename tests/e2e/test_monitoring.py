"""Spidermon on real crawls: our monitor suite, item validation, and an alert e-mail delivered
to a real SMTP server (aiosmtpd, started once for the module on a free loopback port).

Real `scrapy crawl` subprocesses against the shared sandbox with SPIDERMON_ENABLED=true
(tmapi_spiders/monitoring). The failing run's image is one whose conversion the sandbox
denies (a failure record): the "failed images" monitor fails and Spidermon's SMTP action
sends its alert, which must name the run and the monitor and never the token.
"""

from __future__ import annotations

import email
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import crawl
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxThread

pytest.importorskip("spidermon", reason="the monitoring extra (Spidermon) is not installed")
controller_mod = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd (test extra) is not installed")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

TOKEN = "tok-SPIDERMON-SECRET-93"
SMTP_PASSWORD = "smtp-PASSWORD-55"
GOOD = "https://cbu01.alicdn.com/img/monitor-{}.jpg?total=40"  # 2 pages each
DENIED = "https://denied.example.com/monitor.jpg"  # its conversion is refused: a failure record
QUICK = {"CONCURRENT_REQUESTS": "4", "AUTOTHROTTLE_ENABLED": "false", "TMAPI_CACHE": "false"}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


def _login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    with socket.socket() as sock:  # aiosmtpd connects to its own port to see it is up: not 0
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = controller_mod.Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=_login, auth_require_tls=False
    )
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def seeds(tmp_path: Path, *urls: str) -> str:
    path = tmp_path / "seeds.txt"
    path.write_text("\n".join(urls) + "\n", encoding="utf-8")
    return str(path)


def text_of(message: email.message.Message) -> str:
    return "\n".join(
        str(part.get_payload(decode=True).decode("utf-8", "replace"))
        for part in message.walk()
        if not part.is_multipart()
    )


@pytest.fixture
def sandbox(make_sandbox: Callable[..., SandboxThread]) -> SandboxThread:
    return make_sandbox(tokens=(TOKEN,), deny_patterns=(r"://denied\.example\.com/",))


def test_a_clean_run_passes_every_monitor_without_alert_settings(tmp_path: Path, sandbox: SandboxThread) -> None:
    urls = [GOOD.format(i) for i in range(2)]
    result = crawl(
        tmp_path,
        sandbox.base_url,
        {"urls_file": seeds(tmp_path, *urls)},
        {**QUICK, "SPIDERMON_ENABLED": "true"},
        token=TOKEN,
    )
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert len(result.products) == 80
    log = result.stderr
    for name in ("finished cleanly", "failed images within threshold", "records near what total_count promised",
                 "no page paid twice"):  # fmt: skip
        assert f"tmapi/{name}... OK" in log, log[-4000:]
    assert "... FAIL" not in log and "Traceback" not in log
    # Spidermon's item validation ran on every product record against our JSON Schema.
    assert result.stats["spidermon/validation/items"] == 80
    assert "spidermon/validation/items/errors" not in result.stats
    assert result.stats["tmapi/items_expected"] == 80


def test_a_failed_image_sends_an_alert_naming_the_run_and_the_monitor(
    tmp_path: Path, sandbox: SandboxThread, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    before = len(inbox.messages)
    settings = {
        **QUICK,
        "SPIDERMON_ENABLED": "true",
        "SPIDERMON_SMTP_HOST": "127.0.0.1",
        "SPIDERMON_SMTP_PORT": str(port),
        "SPIDERMON_SMTP_USER": "alerts",
        "SPIDERMON_SMTP_PASSWORD": SMTP_PASSWORD,
        "SPIDERMON_EMAIL_TO": "team@example.com",
    }
    result = crawl(
        tmp_path, sandbox.base_url, {"urls_file": seeds(tmp_path, GOOD.format(9), DENIED)}, settings, token=TOKEN
    )
    assert result.returncode == outcome.OK, result.stderr[-3000:]  # the crawl's outcome; the monitors alert
    assert len(result.failures) == 1
    assert "tmapi/failed images within threshold... FAIL" in result.stderr
    [message] = inbox.messages[before:]
    assert message["To"] == "team@example.com"
    assert "image_search" in message["Subject"] and str(result.stats["start_time"])[:10] in message["Subject"]
    body = text_of(message)
    assert "failed images within threshold" in body and "1 images failed" in body
    whole = message.as_string() + body
    assert TOKEN not in whole and SMTP_PASSWORD not in whole


def test_an_smtp_host_without_credentials_is_one_line_before_any_call(tmp_path: Path, sandbox: SandboxThread) -> None:
    settings = {"SPIDERMON_ENABLED": "true", "SPIDERMON_SMTP_HOST": "127.0.0.1", "SPIDERMON_EMAIL_TO": "t@example.com"}
    result = crawl(tmp_path, sandbox.base_url, {"urls_file": seeds(tmp_path, GOOD.format(0))}, settings, token=TOKEN)
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "SPIDERMON_SMTP_USER and SPIDERMON_SMTP_PASSWORD" in line
    assert sandbox.stats()["total_calls"] == 0
