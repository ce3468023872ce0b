"""The demo's steps, in order, each timed; cleanup always runs; the last step checks that nothing is left."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from node_runtime.lab import CNI, Lab, Underlay, ip, links, unique_prefix

from .endpoint import NodeEndpoint
from .imds import IMDS_ADDRESS, NodeImds
from .node import STANDINS, Names, Node, write_standins
from .stack import PER_IP_NAD, StackView, shell_parts, synth
from .world import World, start_moto

DEMO_TMP = "/var/tmp"
IPVLAN_MODES = {"l2", "l3", "l3s"}
IPAMD_UNIT = "eksnet-ipamd.service"


class StepFailed(RuntimeError):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {type(cause).__name__}: {cause}")
        self.step = step


@dataclass
class Pod:
    index: int
    namespace: str
    node: Node
    ips: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = field(default_factory=list)
    add_started: float = 0.0
    add_seconds: float = 0.0
    ec2_calls: list[str] = field(default_factory=list)
    config: dict | None = None  # the CNI config, if not the stack's seed NAD

    def address(self, version: int):
        return next((i.ip for i in self.ips if i.version == version), None)


@dataclass
class Report:
    ec2_calls_per_launch: list[int] = field(default_factory=list)
    ec2_calls_per_launch_by_action: dict[str, int] = field(default_factory=dict)
    multus_enis_per_node: int = 0
    pod_start_ec2_calls: list[int] = field(default_factory=list)
    pod_ready_seconds: list[float] = field(default_factory=list)
    per_ip_start_ec2_calls: list[int] = field(default_factory=list)
    pod_add_seconds: list[float] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)
    leftovers: dict[str, list] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    total_seconds: float = 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


class Demo:
    def __init__(self, cni_bin: Path, pods: int = 6, out=sys.stdout, keep_assembly: Path | None = None,
                 per_ip: bool = True) -> None:
        if pods < 2:
            raise ValueError("--pods must be at least 2 (one per node to ping across)")
        self.cni_bin = cni_bin.resolve()
        self.pods_wanted = pods
        self.per_ip = per_ip
        self.out = out
        self.lab = Lab(unique_prefix("ed"))  # every namespace and link of the run: removed by cleanup()
        self.names = Names(self.lab.prefix)
        # Not under /tmp: each node gets its own /tmp (a bind mount), which would hide the demo's files.
        self.tmp = Path(tempfile.mkdtemp(prefix=f"eksnet-demo-{self.names.prefix}-", dir=DEMO_TMP))
        self.assembly_dir = keep_assembly
        self.t0 = time.monotonic()
        self.report = Report()
        self.world: World | None = None
        self.moto = None
        self.nodes: list[Node] = []
        self.pods: list[Pod] = []
        self.imds: list[NodeImds] = []
        self.endpoints: list[NodeEndpoint] = []
        self.instances: list[str] = []
        self.terminated: set[str] = set()
        self.nad_config: dict = {}
        self.nad_name = ""
        self.gaps: list[str] = []

    # --- output ----------------------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.2f}s]   {text}", file=self.out, flush=True)

    def step(self, name: str, fn) -> object:
        start = time.monotonic()
        print(f"[{start - self.t0:6.2f}s] == {name}", file=self.out, flush=True)
        try:
            result = fn()
        except Exception as exc:
            raise StepFailed(name, exc) from exc
        took = time.monotonic() - start
        self.report.steps.append((name, round(took, 3)))
        print(f"[{time.monotonic() - self.t0:6.2f}s]    ok ({took:.2f}s)", file=self.out, flush=True)
        return result

    # --- the flow --------------------------------------------------------------------------------------------------

    def run(self) -> Report:
        # moto's server starts (its imports take seconds) while the stack synthesizes.
        self._moto_box: dict = {}

        def boot_moto() -> None:
            try:
                self._moto_box["value"] = start_moto()
            except BaseException as exc:  # noqa: BLE001 - reported by the step that waits for it
                self._moto_box["error"] = exc

        self._moto_thread = threading.Thread(target=boot_moto, name="moto", daemon=True)
        self._moto_thread.start()
        try:
            self.step("synthesize the EksnetMultus stack (apps/multus.py)", self.synthesize)
            self.step("moto's server on 127.0.0.1 as EC2 and Auto Scaling (started during the synth)", self.start_aws)
            self.step("create the template's resources in moto", self.create_resources)
            self.step("launch the node group's instances: two nodes (network namespaces, IMDSv2 each)",
                      self.launch_nodes)
            self.step("launch lifecycle actions -> the stack's Lambda handler (ENIs with prefixes, CONTINUE)",
                      self.launch_actions)
            self.step("the attached ENIs appear on the nodes (veth to the bridge, the ENI's MAC)", self.attach_links)
            self.step("node setup: the user data's shell part on each node", self.node_setup)
            self.step("systemd's part: the units the user data started, in its order", self.start_units)
            self.step("readiness check (kubelet's start gate)", self.readiness)
            self.step(f"add {self.pods_wanted} pods through the CNI executables (the stack's NAD)", self.add_pods)
            self.step("pods on different nodes ping each other (IPv4 and IPv6, prefix mode)", self.cross_ping)
            if self.per_ip:
                self.step("per-IP mode: a pod on each node, its address assigned to the node's ENI in EC2",
                          self.per_ip_pods)
            self.step("remove the pods (CNI DEL)", self.remove_pods)
            self.step("terminate the nodes (terminate lifecycle actions -> handler, then EC2 terminates)",
                      self.terminate_nodes)
            self.step("nothing left", self.verify_nothing_left)
        finally:
            self.cleanup()
        self.report.total_seconds = round(time.monotonic() - self.t0, 3)
        self.report.gaps = self.gaps
        return self.report

    def synthesize(self) -> None:
        out = self.assembly_dir or (self.tmp / "cdk.out")
        self.view = StackView(synth(out, per_ip=self.per_ip))
        self.say(f"cloud assembly {out}: {len(self.view.resources)} resources in EksnetMultus")

    def start_aws(self) -> None:
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ[k] = "testing"
        os.environ.pop("AWS_PROFILE", None)
        self._moto_thread.join()
        if "error" in self._moto_box:
            raise self._moto_box["error"]
        self.moto, endpoint, moto_ext = self._moto_box["value"]
        region = self.view.region
        os.environ["AWS_DEFAULT_REGION"] = region
        self.world = World(self.view, endpoint, moto_ext, region, self.view.account, self.names.prefix)
        self.say(f"{endpoint} (region {region}, account {self.view.account}); moto's gaps: demo/moto_ext.py")

    def create_resources(self) -> None:
        self.world.build(self.say)
        pod, self.nad_name, config = self.view.seed_pod_and_nad()
        self.nad_config = self.demo_nad(config)
        self.say(f"the pod {pod['metadata']['name']} selects NAD {self.nad_name}: {json.dumps(config)}")

    def demo_nad(self, config: dict, quiet: bool = False) -> dict:
        """The stack's NAD with its ipvlan link made a macvlan one: this kernel has no ipvlan (TESTING.md)."""
        cfg = dict(config)
        if cfg.get("type") == "eksnet-ipvlan":
            cfg["type"] = "eksnet-macvlan"
            if cfg.get("mode") in IPVLAN_MODES:
                cfg.pop("mode")
            if not quiet:
                self.say("this kernel has no ipvlan: the demo's NADs use eksnet-macvlan (mode bridge) on the same "
                         "master, with the same IPAM, instead of eksnet-ipvlan")
        return cfg

    def make_bridge(self, device_index: int, subnet_id: str) -> None:
        br = self.names.bridge(device_index)
        if br in links(self.lab.prefix):
            return
        Underlay(br, "bridge")
        self.say(f"{br}: a Linux bridge stands for {subnet_id}, the Multus subnet of device {device_index} in "
                 f"{self.world.group.zone}")

    def launch_nodes(self) -> None:
        self.instances = self.world.launch_instances()
        for i, instance in enumerate(self.instances, start=1):
            namespace = os.path.basename(self.lab.namespaces.add(f"n{i}", nodad=True))
            node = Node(i, namespace, self.tmp / f"node{i}", instance_id=instance)
            self.nodes.append(node)
            node.boot()
            ip("-n", node.namespace, "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo")
            imds = NodeImds(node.namespace, instance, self.world.ec2, self.view.account, self.view.region)
            imds.start()
            self.imds.append(imds)
            endpoint = NodeEndpoint(node.namespace, int(self.world.endpoint.rsplit(":", 1)[1]), 8080)
            endpoint.start()
            self.endpoints.append(endpoint)
            self.say(f"{instance} -> namespace {node.namespace}, IMDSv2 at {IMDS_ADDRESS}:80, "
                     f"EC2 at {endpoint.url} (forwarded to moto)")

    def launch_actions(self) -> None:
        by_action: dict[str, int] = {}
        for node in self.nodes:
            before = dict(self.world.ec2_calls)
            outcome, calls, result = self.world.lifecycle(node.instance_id, "LAUNCHING")
            if result != "CONTINUE":
                raise RuntimeError(f"launch of {node.instance_id}: lifecycle result {result!r}, outcome {outcome}")
            for k, v in self.world.ec2_calls.items():
                by_action[k] = by_action.get(k, 0) + v - before.get(k, 0)
            enis = outcome.get("enis", {})
            self.report.ec2_calls_per_launch.append(calls)
            self.report.multus_enis_per_node = len(enis)
            self.say(f"{node.instance_id}: {result}, ENIs {enis}, {calls} EC2 calls; handler log: "
                     + "; ".join(self.world.handler_log))
        self.report.ec2_calls_per_launch_by_action = by_action

    def attach_links(self) -> None:
        for node in self.nodes:
            enis = self.world.ec2.describe_network_interfaces(Filters=[
                {"Name": "attachment.instance-id", "Values": [node.instance_id]}])["NetworkInterfaces"]
            for eni in enis:
                index = eni["Attachment"]["DeviceIndex"]
                if index == 0:
                    continue
                node.enis[index] = eni
                self.make_bridge(index, eni["SubnetId"])
                host = node.attach_link(self.lab, self.names, index, eni["MacAddress"])
                prefixes = [p["Ipv4Prefix"] for p in eni.get("Ipv4Prefixes", [])] + \
                           [p["Ipv6Prefix"] for p in eni.get("Ipv6Prefixes", [])]
                self.say(f"{node.namespace}: {eni['NetworkInterfaceId']} device {index} -> eth{index} "
                         f"{eni['MacAddress']} (bridge port {host}), prefixes {', '.join(prefixes)}")
            if not node.enis:
                raise RuntimeError(f"{node.instance_id} has no Multus ENI in moto")

    def node_setup(self) -> None:
        lt = self.world.ec2.describe_launch_template_versions(
            LaunchTemplateName=self.world.group.launch_template)["LaunchTemplateVersions"][0]
        scripts = shell_parts(lt["LaunchTemplateData"]["UserData"])
        if len(scripts) != 1:
            raise RuntimeError(f"the user data has {len(scripts)} shell parts, the demo expects 1")
        standins = self.standins = write_standins(self.tmp / "standins")
        s3 = self.stage_assets(scripts[0])
        for name, what in STANDINS.items():
            self.say(f"stand-in {name}: {what}")
        procs = {}
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for node in self.nodes:
                procs[node.namespace] = pool.submit(node.run_user_data, scripts[0], standins, s3)
        for node in self.nodes:
            proc = procs[node.namespace].result()
            if proc.returncode:
                raise RuntimeError(f"user data on {node.namespace} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
            for line in proc.stderr.splitlines():
                if line.startswith("eksnet"):
                    self.say(f"{node.namespace}: {line}")
            self.say(f"{node.namespace}: stand-ins called: " + "; ".join(node.standin_calls()))
            if node.ipamd_config.exists():
                self.say(f"{node.namespace}: {node.ipamd_config.relative_to(node.root)} = "
                         f"{json.dumps(json.loads(node.ipamd_config.read_text()))}")

    def stage_assets(self, script: str) -> Path:
        """The S3 objects the user data downloads, staged from the cloud assembly (zipped as CDK publishes them)."""
        import re

        s3 = self.tmp / "s3"
        for bucket, key in re.findall(r"aws s3 cp '?s3://([^/]+)/([^' ]+)'?", script):
            src = self.view.asset_path(key)
            dest = s3 / bucket / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
                    for f in sorted(src.rglob("*")):
                        z.write(f, f.relative_to(src))
            else:
                shutil.copy(src, dest)
            self.say(f"s3://{bucket}/{key} <- {src.relative_to(self.view.assembly.parent)}")
        return s3

    def start_units(self) -> None:
        for node, endpoint in zip(self.nodes, self.endpoints, strict=True):
            units = node.started_units()
            if IPAMD_UNIT not in units:
                units.insert(0, IPAMD_UNIT)  # user data of old: the daemon was started by its own installer line
            self.say(f"{node.namespace}: units started by the user data: {', '.join(units)}")
            for unit in units:
                self.start_unit(node, endpoint, unit)
            for unit in self.pending_reloads(node):
                self.reload_or_restart(node, endpoint, unit)

    def start_unit(self, node: Node, endpoint: NodeEndpoint, unit: str) -> None:
        if unit == IPAMD_UNIT:
            argv = node.start_daemon(unit, self.tmp / f"{node.namespace}-ipamd.log", env=self.daemon_env(endpoint))
            started = node.wait_daemon()
            self.say(f"{node.namespace}: {unit} (Type={node.notify_type}): {' '.join(argv[:2])} ... started: {started}")
            return
        kind = (node.unit_setting(unit, "Type") or ["simple"])[-1]
        if kind != "oneshot":
            raise RuntimeError(f"{unit}: Type={kind}; the demo runs oneshot units and {IPAMD_UNIT} only")
        env = node.env(self.standins, EKSNET_IPAMD_RELOAD=f"systemctl try-reload-or-restart {IPAMD_UNIT}")
        proc = node.run_oneshot(unit, env)
        for line in (proc.stdout + proc.stderr).splitlines():
            self.say(f"{node.namespace}: {unit}: {line}")
        if proc.returncode:
            raise RuntimeError(f"{unit} on {node.namespace} exited {proc.returncode}")
        self.say(f"{node.namespace}: {unit} (Type=oneshot) done; {node.ipamd_config.relative_to(node.root)} = "
                 f"{json.dumps(json.loads(node.ipamd_config.read_text())) if node.ipamd_config.exists() else '-'}")

    def pending_reloads(self, node: Node) -> list[str]:
        done = getattr(node, "reloads_done", 0)
        calls = [c.split()[-1] for c in node.standin_calls() if c.startswith("systemctl try-reload-or-restart")]
        node.reloads_done = len(calls)
        return list(dict.fromkeys(calls[done:]))

    def reload_or_restart(self, node: Node, endpoint: NodeEndpoint, unit: str) -> None:
        """``systemctl try-reload-or-restart``: ExecReload if the unit has one, else a restart."""
        reload = node.unit_setting(unit, "ExecReload")
        if reload and node.daemon is not None:
            argv = [a.replace("$MAINPID", str(node.daemon.pid)) for a in reload[0].split()]
            subprocess.run(argv, check=True)
            self.say(f"{node.namespace}: {unit} reloaded ({' '.join(argv)})")
        else:
            node.stop_daemon()
            self.start_unit(node, endpoint, unit)
            self.say(f"{node.namespace}: {unit} restarted (no ExecReload in the unit)")

    def daemon_env(self, endpoint: NodeEndpoint) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "AWS_ENDPOINT_URL_EC2": endpoint.url,
                "AWS_REGION": self.view.region, "AWS_DEFAULT_REGION": self.view.region,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def readiness(self) -> None:
        dropins = sorted((self.nodes[0].root / "etc/systemd/system/kubelet.service.d").glob("*.conf"))
        for node in self.nodes:
            gate = [pre for d in dropins for pre in node.unit_setting("kubelet.service", "ExecStartPre", d.name)]
            if not gate:
                raise RuntimeError("the user data installs no kubelet drop-in with a readiness ExecStartPre: kubelet "
                                   "would start before the node's Multus network is ready")
            for command in gate:
                proc = subprocess.run(node.argv(shlex.split(command)), env=node.env(self.standins),
                                      capture_output=True, text=True, timeout=180)
                out = (proc.stdout + proc.stderr).strip().replace("\n", "; ")
                if proc.returncode:
                    raise RuntimeError(f"{node.namespace}: kubelet's ExecStartPre failed ({proc.returncode}): {out}")
                self.say(f"{node.namespace}: kubelet ExecStartPre passes: {' '.join(shlex.split(command)[2:])}: {out}")
            status = node.daemon_status(self.cni_bin)
            self.say(f"{node.namespace}: daemon status: {json.dumps(status)[:200]}")

    # --- pods ----------------------------------------------------------------------------------------------------

    def cni(self, pod: Pod, command: str) -> dict:
        config = pod.config or {"name": self.nad_name, **self.nad_config}
        runtime = CNI(self.cni_bin, {"EKSNET_IPAMD_SOCKET": str(pod.node.socket)}, netns=pod.node.namespace)
        env = runtime.env(command, f"demo-{pod.namespace}", f"/run/netns/{pod.namespace}", "net1")
        proc = runtime.raw(config["type"], env, json.dumps(config).encode())
        out, err = proc.stdout.decode(errors="replace").strip(), proc.stderr.decode(errors="replace").strip()
        if proc.returncode:
            raise RuntimeError(f"CNI {command} of {pod.namespace} on {pod.node.namespace} exited {proc.returncode}: "
                               f"{out} {err}")
        return json.loads(out) if out else {}

    def add_pod(self, index: int, node: Node, config: dict | None = None) -> Pod:
        pod = Pod(index, os.path.basename(self.lab.namespaces.add(f"p{index}", nodad=True)), node, config=config)
        self.pods.append(pod)
        endpoint = self.endpoints[node.index - 1]
        pod.add_started = time.monotonic()
        result = self.cni(pod, "ADD")
        pod.add_seconds = time.monotonic() - pod.add_started
        pod.ec2_calls = endpoint.actions_between(pod.add_started, time.monotonic())
        pod.ips = [ipaddress.ip_interface(i["address"]) for i in result.get("ips", [])]
        return pod

    def ping(self, src: Pod, dst_ip, timeout_s: float = 5.0) -> float:
        deadline = time.monotonic() + timeout_s
        while True:
            proc = subprocess.run(["ip", "netns", "exec", src.namespace, "ping", "-n", "-c", "1", "-W", "1",
                                   str(dst_ip)], capture_output=True, text=True)
            if proc.returncode == 0:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{src.namespace} ({src.node.namespace}) cannot ping {dst_ip}: "
                                   f"{proc.stdout.strip().splitlines()[-1:] or proc.stderr.strip()}")
            time.sleep(0.01)

    def add_pods(self) -> None:
        for i in range(self.pods_wanted):
            node = self.nodes[i % len(self.nodes)]
            pod = self.add_pod(i, node)
            if i >= len(self.nodes):  # the first pod of each node is the others' peer
                peer = self.pods[(i + 1) % len(self.nodes)]
                ready = self.ping(pod, peer.address(4))
                self.report.pod_ready_seconds.append(ready - pod.add_started)
            self.report.pod_add_seconds.append(pod.add_seconds)
            self.report.pod_start_ec2_calls.append(len(pod.ec2_calls))
            self.say(f"{pod.namespace} on {node.namespace}: net1 {', '.join(map(str, pod.ips))} "
                     f"(ADD {pod.add_seconds * 1000:.0f} ms, EC2 calls {len(pod.ec2_calls)})")
        for pod in self.pods:
            versions = {ip.version for ip in pod.ips}
            if versions != {4, 6}:
                raise RuntimeError(f"{pod.namespace} got {pod.ips}: the demo expects an IPv4 and an IPv6 address")
            node_enis = pod.node.enis.values()
            prefixes = [ipaddress.ip_network(p[k]) for e in node_enis
                        for k, ps in (("Ipv4Prefix", e.get("Ipv4Prefixes", [])), ("Ipv6Prefix", e.get("Ipv6Prefixes", [])))
                        for p in ps]
            outside = [ip for ip in pod.ips if not any(ip.ip in p for p in prefixes)]
            if outside:
                raise RuntimeError(f"{pod.namespace}: {outside} not in its node's delegated prefixes {prefixes}")
        ready = self.report.pod_ready_seconds
        self.say(f"every pod address is in its node's delegated prefixes; ADD start -> first cross-node ping: "
                 f"p50 {percentile(ready, 50) * 1000:.0f} ms, p99 {percentile(ready, 99) * 1000:.0f} ms "
                 f"over {len(ready)} pods; EC2 calls on the pods' start paths: {sum(self.report.pod_start_ec2_calls)}")

    def ipv6_routed(self) -> bool:
        """Whether the NAD gives pods a route for IPv6 (a pod's /80 alone does not reach the other node's)."""
        routes = self.nad_config.get("ipam", {}).get("routes", [])
        return any(":" in r.get("dst", "") for r in routes) or any(
            "gateway" in ip for ip in self.nad_config.get("ipam", {}).get("addresses", []))

    def cross_ping(self) -> None:
        pairs = 0
        ipv6 = self.ipv6_routed()
        for a in self.pods:
            for b in self.pods:
                if a.node is b.node:
                    continue
                self.ping(a, b.address(4), timeout_s=3.0)
                pairs += 1
                if ipv6:
                    self.ping(a, b.address(6), timeout_s=3.0)
                    pairs += 1
        if not ipv6:
            # Issue 11, item 7: the stack's NAD hands out IPv6 addresses without an IPv6 route. Shown, not hidden:
            # the pings must fail as that predicts, and the demo says so; once the NAD has the route, they must pass.
            a, b = self.pods[0], next(p for p in self.pods if p.node is not self.pods[0].node)
            try:
                self.ping(a, b.address(6), timeout_s=0.5)
            except RuntimeError as exc:
                self.gaps.append(f"IPv6 between nodes: the NAD has no IPv6 route ({exc})")
                self.say(f"KNOWN GAP (issue 11 item 7): the NAD has no IPv6 route: {exc}")
            else:
                raise RuntimeError("IPv6 crosses nodes although the NAD has no IPv6 route: the demo's check is stale")
            same = [(x, y) for x in self.pods for y in self.pods if x is not y and x.node is y.node]
            for x, y in same:
                self.ping(x, y.address(6), timeout_s=3.0)
            self.say(f"IPv6 between pods of the same node (same /80): {len(same)} pings answered")
        self.say(f"{pairs} cross-node pings answered ({len(self.pods)} pods, "
                 f"{'IPv4 and IPv6' if ipv6 else 'IPv4'})")

    def per_ip_pods(self) -> None:
        interfaces = json.loads((self.nodes[0].root / "etc/eksnet/multus.json").read_text())["interfaces"]
        per_ip = [i for i in interfaces if str(i.get("mode", "")).replace("_", "-") == "per-ip"]
        if not per_ip:
            raise RuntimeError(f"the node config has no per-IP interface: {interfaces}")
        iface = per_ip[0]
        config = self.demo_nad(self.view.nad_config(PER_IP_NAD), quiet=True)
        if config.get("ipam", {}).get("pool") != iface["pool"]:
            raise RuntimeError(f"NAD {PER_IP_NAD} uses pool {config.get('ipam')}, the per-IP interface's is "
                               f"{iface['pool']}")
        config = {"name": PER_IP_NAD, **config}
        self.say(f"NAD {PER_IP_NAD} on {iface['name']} (device {iface['deviceIndex']}), pool {iface['pool']}: "
                 f"{json.dumps(self.view.nad_config(PER_IP_NAD))}")
        pods = []
        base = len(self.pods) + 100
        for k, node in enumerate(self.nodes):
            pod = self.add_pod(base + k, node, config)
            pods.append(pod)
            eni = node.enis[iface["deviceIndex"]]["NetworkInterfaceId"]
            held = self.eni_addresses(eni)
            address = str(pod.address(4))
            if address not in held:
                raise RuntimeError(f"{pod.namespace}: {address} is not assigned to {eni} in EC2 (it holds {held})")
            self.report.per_ip_start_ec2_calls.append(len(pod.ec2_calls))
            self.say(f"{pod.namespace} on {node.namespace}: net1 {', '.join(map(str, pod.ips))} (ADD "
                     f"{pod.add_seconds * 1000:.0f} ms); in EC2, {eni} holds {address}; EC2 calls on its start path: "
                     f"{len(pod.ec2_calls)} ({', '.join(pod.ec2_calls)})")
        self.ping(pods[0], pods[1].address(4))
        self.ping(pods[1], pods[0].address(4))
        self.say("the per-IP pods ping each other across nodes")
        for pod in pods:
            eni = pod.node.enis[iface["deviceIndex"]]["NetworkInterfaceId"]
            address = str(pod.address(4))
            self.cni(pod, "DEL")
            self.lab.namespaces.delete(pod.namespace)
            self.pods.remove(pod)
            # The daemon answers DEL once the lease is released and unassigns after the link is gone: wait for it.
            deleted, deadline = time.monotonic(), time.monotonic() + 15
            while address in (held := self.eni_addresses(eni)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{address} is still assigned to {eni} 15 s after DEL of {pod.namespace}")
                time.sleep(0.05)
            self.say(f"{pod.namespace} deleted: {address} unassigned from {eni} "
                     f"{(time.monotonic() - deleted) * 1000:.0f} ms after DEL answered (it holds {held})")

    def eni_addresses(self, eni_id: str) -> list[str]:
        eni = self.world.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
        return [a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", [])]

    def remove_pods(self) -> None:
        for pod in list(self.pods):
            self.cni(pod, "DEL")
            self.lab.namespaces.delete(pod.namespace)
            self.pods.remove(pod)
        for node in self.nodes:
            status = node.daemon_status(self.cni_bin)
            if status["leases"]:
                raise RuntimeError(f"{node.namespace}: {status['leases']} leases left after DEL")
        self.say("every pod deleted; the daemons hold 0 leases")

    # --- termination ---------------------------------------------------------------------------------------------

    def terminate_nodes(self) -> None:
        for node in self.nodes:
            outcome, calls, result = self.world.lifecycle(node.instance_id, "TERMINATING")
            if result != "CONTINUE":
                raise RuntimeError(f"terminate of {node.instance_id}: lifecycle result {result!r}, outcome {outcome}")
            self.world.terminate(node.instance_id)
            self.terminated.add(node.instance_id)
            self.shut_down(node)
            self.say(f"{node.instance_id}: {result}, {calls} EC2 calls by the handler (log: "
                     + "; ".join(self.world.handler_log)
                     + "); terminated; its namespace, "
                     "ENI links, IMDS and daemon are gone")

    def shut_down(self, node: Node) -> None:
        """What an instance's end takes with it: its processes, ENI links, IMDS, and the namespace."""
        node.halt()
        for imds in [i for i in self.imds if i.namespace == node.namespace]:
            imds.stop()
            self.imds.remove(imds)
        for ep in [e for e in self.endpoints if e.namespace == node.namespace]:
            ep.stop()
        for link in node.links:
            ip("link", "del", link, check=False)
        node.links.clear()
        self.lab.namespaces.delete(node.namespace)

    def verify_nothing_left(self) -> None:
        left: dict[str, list] = {}
        enis = [e["NetworkInterfaceId"] for e in self.world.cluster_enis() if e.get("Status") != "deleted"]
        if enis:
            left["ENIs"] = enis
        states = self.world.instance_states(self.instances)
        alive = [i for i, s in states.items() if s not in ("terminated", "shutting-down")]
        if alive:
            left["instances"] = alive
        multus_subnets = [sid for ids in json.loads(self.world.function_env["MULTUS_SUBNETS"]).values() for sid in ids]
        in_multus = self.world.ec2.describe_network_interfaces(Filters=[
            {"Name": "subnet-id", "Values": multus_subnets}])["NetworkInterfaces"]
        if in_multus:
            left["ENIs in the Multus subnets"] = [e["NetworkInterfaceId"] for e in in_multus]
        assignments = [f"{e['NetworkInterfaceId']}: {a['PrivateIpAddress']}" for e in in_multus
                       for a in e.get("PrivateIpAddresses", []) if not a.get("Primary")]
        assignments += [f"{e['NetworkInterfaceId']}: {a['Ipv6Address']}" for e in in_multus
                        for a in e.get("Ipv6Addresses", [])]
        if assignments:
            left["IP assignments"] = assignments
        leases = [str(p) for n in self.nodes for p in n.state_dir.glob("*") if p.is_file() and self.has_leases(p)]
        if leases:
            left["leases"] = leases
        lab = self.lab.leftovers()
        if lab.get("namespaces"):
            left["namespaces"] = lab["namespaces"]
        if [n for n in lab.get("links", []) if not self.names.is_bridge(n)]:
            left["links"] = [n for n in lab["links"] if not self.names.is_bridge(n)]
        procs = self.our_processes()
        if procs:
            left["processes"] = procs
        self.report.leftovers = left
        if left:
            raise RuntimeError("left behind: " + json.dumps(left))
        self.say("nothing left: ENIs 0, instances running 0, IP assignments 0, leases 0, namespaces 0, "
                 "ENI links 0, processes 0")

    @staticmethod
    def has_leases(path: Path) -> bool:
        import sqlite3

        if path.suffix not in (".db", ".sqlite", ".sqlite3"):
            return False
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
            return any(con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables if "lease" in t)
        finally:
            con.close()

    def our_processes(self) -> list[str]:
        found = []
        marker = str(self.tmp).encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                text = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{pid}: {text[:120]}")
        return found

    # --- cleanup -------------------------------------------------------------------------------------------------

    def _stop_moto(self) -> None:
        thread = getattr(self, "_moto_thread", None)
        if thread is not None:
            thread.join(timeout=60)
            if self.moto is None and "value" in self._moto_box:
                self.moto = self._moto_box["value"][0]
        if self.moto is not None:
            self.moto.stop()

    def cleanup(self) -> None:
        """Whatever happened: processes, servers, namespaces, links, moto, files. Never raises."""
        errors = []
        timings = []
        for action in (
            lambda: [n.halt() for n in self.nodes],
            lambda: [i.stop() for i in self.imds],
            lambda: [e.stop() for e in self.endpoints],
            lambda: self.lab.close(),  # the pods' and nodes' namespaces, the bridges, the ENI links
            lambda: self._stop_moto(),
            lambda: shutil.rmtree(self.tmp, ignore_errors=True),
        ):
            started = time.monotonic()
            try:
                action()
            except BaseException as exc:  # noqa: BLE001 - cleanup goes on
                errors.append(repr(exc))
            timings.append(round(time.monotonic() - started, 2))
        if os.environ.get("EKSNET_DEMO_DEBUG"):
            print(f"cleanup timings: {timings}", file=sys.stderr)
        if errors:
            print(f"cleanup: {errors}", file=sys.stderr)


def run(cni_bin: Path, pods: int, report_path: Path | None = None, out=sys.stdout, per_ip: bool = True) -> int:
    if os.geteuid() != 0:
        print("the demo needs root (network namespaces, links, mounts)", file=sys.stderr)
        return 2
    missing = [t for t in ("eksnet-ipam", "eksnet-macvlan", "eksnet-ipamd") if not (cni_bin / t).exists()]
    if missing:
        print(f"{cni_bin} lacks {', '.join(missing)}: run `make cni-bin DEST={cni_bin}` first", file=sys.stderr)
        return 2

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and Python keeps an inherited SIG_IGN.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    demo = Demo(cni_bin, pods=pods, out=out, per_ip=per_ip)
    print(f"eksnet demo {demo.names.prefix}: the Multus flow on one machine, no AWS (run {uuid.uuid4().hex[:8]})",
          file=out, flush=True)
    code = 0
    try:
        report = demo.run()
    except StepFailed as exc:
        print(f"FAILED at step {exc}", file=out, flush=True)
        report, code = demo.report, 1
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=out, flush=True)
        report, code = demo.report, 130
    if report_path is not None:
        report_path.write_text(json.dumps(report.__dict__, indent=2, default=str))
    if code == 0:
        gaps = f"; known gaps ({len(report.gaps)}): " + " | ".join(report.gaps) if report.gaps else ""
        print(f"demo passed in {report.total_seconds:.1f}s{gaps}", file=out, flush=True)
    return code


__all__ = ["Demo", "run", "percentile", "statistics"]
