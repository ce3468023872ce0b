"""The shared CNI skeleton: versions, commands, result formats, error codes; fuzzed input never
produces a traceback, only a CNI error with a known code."""

from __future__ import annotations

import asyncio
import json

import pytest
from cni_strategies import envs, stdins
from hypothesis import given, settings
from hypothesis import strategies as st

from node_runtime.cni.skeleton import Host, Plugin, parse_args, run
from node_runtime.cni.types import OUR_CODES, SPEC_CODES, normalize_result, result_for_version
from node_runtime.plugins import get_plugin

VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
RESULT = {"ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1"}, {"address": "fd00::2/80"}],
          "routes": [{"dst": "0.0.0.0/0"}]}


class Recorder(Plugin):
    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def add(self, req, host):
        self.calls.append("ADD")
        return RESULT

    async def delete(self, req, host):
        self.calls.append("DEL")

    async def check(self, req, host):
        self.calls.append("CHECK")

    async def gc(self, req, host):
        self.calls.append("GC")

    async def status(self, req, host):
        self.calls.append("STATUS")


def invoke(plugin: Plugin, command: str, config, **env: str) -> tuple[int, dict | None]:
    full = {"CNI_COMMAND": command, "CNI_CONTAINERID": "ctr1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "net1",
            "CNI_PATH": "/opt/cni/bin"}
    full.update(env)
    full = {k: v for k, v in full.items() if v is not None}
    stdin = config if isinstance(config, bytes) else json.dumps(config).encode()
    code, out = asyncio.run(run(plugin, full, stdin, Host()))
    return code, (json.loads(out) if out.strip() else None)


def conf(version: str, **extra) -> dict:
    return {"cniVersion": version, "name": "net", "type": "recorder", **extra}


@pytest.mark.parametrize("version", VERSIONS)
def test_add_result_has_ip_versions_only_before_1_0_0(version):
    code, out = invoke(Recorder(), "ADD", conf(version))
    assert code == 0 and out["cniVersion"] == version
    has_version = [("version" in ip) for ip in out["ips"]]
    assert has_version == [version < "1.0.0"] * 2
    if version < "1.0.0":
        assert [ip["version"] for ip in out["ips"]] == ["4", "6"]


@pytest.mark.parametrize("version", VERSIONS)
def test_del_prints_nothing_and_exits_zero(version):
    assert invoke(Recorder(), "DEL", conf(version)) == (0, None)


@pytest.mark.parametrize("version", VERSIONS)
def test_check_is_refused_before_0_4_0(version):
    plugin = Recorder()
    code, out = invoke(plugin, "CHECK", conf(version, prevResult=RESULT))
    if version < "0.4.0":
        assert code == 1 and out["code"] == 1 and plugin.calls == []
    else:
        assert code == 0 and plugin.calls == ["CHECK"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("command", ["GC", "STATUS"])
def test_gc_and_status_exist_from_1_1_0(version, command):
    plugin = Recorder()
    code, out = invoke(plugin, command, conf(version))
    if version == "1.1.0":
        assert code == 0 and plugin.calls == [command]
    else:
        assert out["code"] == 1


@pytest.mark.parametrize("asked", [*VERSIONS, None])
def test_version_lists_every_supported_version(asked):
    code, out = invoke(Recorder(), "VERSION", {} if asked is None else {"cniVersion": asked})
    assert code == 0 and out["supportedVersions"] == list(VERSIONS)
    assert out["cniVersion"] == (asked or "1.1.0")


def test_disable_check_and_disable_gc_skip_the_plugin():
    plugin = Recorder()
    assert invoke(plugin, "CHECK", conf("1.1.0", disableCheck=True))[0] == 0
    assert invoke(plugin, "GC", conf("1.1.0", disableGC=True))[0] == 0
    assert plugin.calls == []


@pytest.mark.parametrize("config, env, code", [
    ({"cniVersion": "2.0.0", "name": "n", "type": "t"}, {}, 1),
    ({"cniVersion": "0.2.0", "name": "n", "type": "t"}, {}, 1),
    (conf("1.0.0"), {"CNI_ARGS": "FOO=bar"}, 2),
    (conf("1.0.0"), {"CNI_COMMAND": "BOOM"}, 4),
    (conf("1.0.0"), {"CNI_CONTAINERID": None}, 4),
    (conf("1.0.0"), {"CNI_CONTAINERID": "bad id"}, 4),
    (conf("1.0.0"), {"CNI_IFNAME": "a-name-longer-than-15"}, 4),
    (conf("1.0.0"), {"CNI_IFNAME": "a/b"}, 4),
    (conf("1.0.0"), {"CNI_NETNS": None}, 4),
    (conf("1.0.0"), {"CNI_ARGS": "novalue"}, 4),
    (b"{not json", {}, 6),
    (b"[1, 2]", {}, 6),
    (b"\xff\xfe", {}, 6),
    ({"name": "n", "type": "t"}, {}, 7),
    ({"cniVersion": "1.0.0", "type": "t"}, {}, 7),
    ({"cniVersion": "1.0.0", "name": "bad name", "type": "t"}, {}, 7),
    ({"cniVersion": "1.0.0", "name": "n"}, {}, 7),
    ({"cniVersion": "x.y", "name": "n", "type": "t"}, {}, 7),
])
def test_bad_input_gets_the_spec_error_code(config, env, code):
    env = {"CNI_COMMAND": "ADD", **env}
    rc, out = invoke(Recorder(), env.pop("CNI_COMMAND"), config, **env)
    assert rc == 1 and out["code"] == code and isinstance(out["msg"], str) and out["msg"]


def test_unknown_cni_args_are_accepted_with_ignore_unknown():
    assert parse_args("IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=p") == {"IgnoreUnknown": "1", "FOO": "bar",
                                                                     "K8S_POD_NAME": "p"}


def test_del_needs_no_netns():
    assert invoke(Recorder(), "DEL", conf("1.0.0"), CNI_NETNS=None) == (0, None)


def test_a_plugin_bug_is_a_cni_error_not_a_traceback():
    class Broken(Recorder):
        async def add(self, req, host):
            raise ZeroDivisionError("boom")

    code, out = invoke(Broken(), "ADD", conf("1.0.0"))
    assert code == 1 and out["code"] == 999 and "ZeroDivisionError" in out["details"]


def test_results_convert_between_versions_both_ways():
    legacy = result_for_version(normalize_result(RESULT), "0.3.1")
    assert [ip["version"] for ip in legacy["ips"]] == ["4", "6"]
    assert normalize_result(legacy)["ips"] == RESULT["ips"]


# -- fuzzing ----------------------------------------------------------------------------------------


class NoDaemon(Host):
    ipam = None


@settings(max_examples=400, deadline=None)
@given(env=envs, stdin=stdins, plugin=st.sampled_from(["eksnet-ipam", "eksnet-macvlan", "eksnet-ipvlan"]))
def test_fuzzed_input_always_gets_a_valid_answer(env, stdin, plugin):
    env = {k: v.replace("\0", "") for k, v in env.items()}
    code, out = asyncio.run(run(get_plugin(plugin), env, stdin, NoDaemon()))
    assert code in (0, 1)
    if code == 1:
        error = json.loads(out)
        assert error["code"] in SPEC_CODES | OUR_CODES - {999}, error
        assert isinstance(error["msg"], str) and error["msg"]
    elif out:
        json.loads(out)
