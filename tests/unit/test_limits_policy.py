"""The AIMD policy exists twice: `limits.Aimd` (one process) and the Redis RELEASE script
(a shared job). Both take their constants from one place; this table runs the same events
through both, on a real redis-server, and compares the limits after every step."""

from __future__ import annotations

import re
import time

import pytest

from tests.redis_server import RedisServer
from tmapi_spiders import limits
from tmapi_spiders.limits import shared

OK, OVERLOAD, STALE = "ok", "503", "503 of an older epoch"
EVENTS = [OK, OVERLOAD, STALE, OVERLOAD, *[OK] * 40, OVERLOAD, OVERLOAD, *[OK] * 120, STALE, *[OK] * 30]


@pytest.mark.parametrize("probe", [limits.PROBE, 0.0])  # 0: every creep is past the probe window
@pytest.mark.parametrize(("ceiling", "qps_ceiling"), [(8, 0.0), (1, 0.0), (0, 10.0), (8, 10.0), (3, 2.5)])
def test_the_python_policy_and_the_lua_script_agree(
    redis_server: RedisServer, ceiling: int, qps_ceiling: float, probe: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "PROBE", probe)  # Aimd reads the module's PROBE; the script takes it as an argument
    client = redis_server.client()
    release = client.register_script(shared.RELEASE)
    tag = f"{{policy-{ceiling}-{qps_ceiling}-{probe}}}"
    keys = [f"{tag}:slots", f"{tag}:state", f"{tag}:wake"]
    client.delete(*keys)
    aimd = limits.Aimd(ceiling, qps_ceiling)
    cuts = 0
    for step, event in enumerate(EVENTS):
        epoch = aimd.epoch if event != STALE else aimd.epoch - 1
        at_ceiling = int((not ceiling or aimd.limit >= ceiling) and (not qps_ceiling or aimd.qps >= qps_ceiling))
        lua_cut, lua_limit, lua_qps = release(
            keys=keys,
            args=[
                ceiling,
                qps_ceiling,
                "holder",
                int(event != OK),
                epoch,
                probe,
                at_ceiling,
                600,
                *limits.AIMD_ARGS,
            ],
        )
        if event == OK:
            aimd.on_success(time.time())
            py_cut = False
        else:
            py_cut = aimd.on_overload(epoch, time.time())
        cuts += py_cut
        where = f"step {step} ({event})"
        assert bool(int(lua_cut)) == py_cut, where
        if ceiling:
            assert float(lua_limit) == pytest.approx(aimd.limit, rel=1e-9), where
        if qps_ceiling:
            assert float(lua_qps) == pytest.approx(aimd.qps, rel=1e-9), where
    assert cuts == 4  # four current-epoch 503s cut; the stale ones did not
    if probe:  # held under the level that failed (with no probe window it may be back at the ceiling)
        assert aimd.limit < ceiling or not ceiling or ceiling == 1  # still creeping back after the last cut


def test_the_constants_are_the_scripts_arguments() -> None:
    """No policy number is written into the Lua script itself."""
    for literal in (r"\* 0\.9\b", r"/ 100\b", r"/ 200\b", r"\(10 \*"):
        assert not re.search(literal, shared.RELEASE), literal
    assert limits.AIMD_ARGS == (limits.CUT, limits.CREEP, limits.QPS_FLOOR, limits.QPS_STEP)
