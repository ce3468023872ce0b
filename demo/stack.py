"""What the demo runs, read from the synthesized ``EksnetMultus`` stack (never from constants of its own).

The stack is synthesized once into a temporary cloud assembly (``synth``); ``StackView`` reads the template and
the asset manifest and resolves the few CloudFormation intrinsics the Multus parts use (``Ref``, ``Fn::GetAtt``,
``Fn::Select``, ``Fn::Cidr``, ``Fn::Join``, ``Fn::Base64``) against the physical ids the demo's moto world gave each
resource. Anything it cannot resolve is an error naming the resource and the intrinsic: when the constructs change
shape, the demo says where, instead of running something else.
"""

from __future__ import annotations

import base64
import email
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

STACK = "EksnetMultus"


class TemplateError(RuntimeError):
    """The template does not hold what the demo expects (a construct changed): says what is missing."""


PER_IP_NAD = "perip-demo"


def synth(outdir: Path, per_ip: bool = True) -> Path:
    """Synthesize ``apps.multus``'s stack (as the default app does) into ``outdir``; returns the cloud assembly dir.

    Only this stack: the others do not take part in the demo. With ``per_ip``, the stack's ``MultusNetworking``
    gets a second interface in per-IP mode (its range: the construct's default block of each zone's subnet) and
    a NAD on it, ``perip-demo``: the seed's stack has no per-IP interface, the demo shows one. The template gates (cfn-lint, cdk-nag) are
    ``make test``'s business, so aws-cdk-lib's template validation is off here (``CDK_VALIDATION=false``)."""
    os.environ.setdefault("CDK_VALIDATION", "false")
    import aws_cdk as cdk

    from apps import context, main, multus

    app = cdk.App(outdir=str(outdir))
    settings = context.read(app)  # the eksnet:* context keys, as the default app reads them
    if per_ip:
        from eksnet.multus import AddressMode, MultusInterface, PerIpSettings

        stack = multus.MultusStack(app, STACK, deploy_env=settings.deploy_env, nat_gateways=settings.nat_gateways,
                                   interfaces=[MultusInterface(ipv4_prefixes=1, ipv6_prefixes=1),
                                               MultusInterface(mode=AddressMode.PER_IP, per_ip=PerIpSettings())])
        stack.networking.add_nad(PER_IP_NAD, interface=2)
    else:
        stacks = main.add_stacks(app, replace(settings, stacks=(STACK,)))
        if STACK not in stacks:
            raise TemplateError(f"apps.main no longer adds a stack named {STACK}")
    app.synth()
    return outdir


@dataclass
class Subnet:
    logical_id: str
    zone: str
    cidr: str
    ipv6_cidr: Any  # an intrinsic until the VPC's IPv6 block is known
    tags: dict[str, str]

    @property
    def multus(self) -> bool:
        return self.tags.get("multus") == "true"


class StackView:
    """The EksnetMultus template and its assets, with intrinsics resolved against ``physical`` ids.

    ``physical``: logical id -> physical id (``Ref``); ``attributes``: (logical id, attribute) -> value
    (``Fn::GetAtt``). The demo's world fills both as it creates the resources in moto."""

    def __init__(self, assembly: Path, stack: str = STACK) -> None:
        self.assembly = assembly
        manifest = json.loads((assembly / "manifest.json").read_text())
        artifact = manifest["artifacts"].get(stack)
        if artifact is None:
            raise TemplateError(f"no stack {stack} in {assembly}")
        env = artifact.get("environment", "")  # aws://<account>/<region>
        self.account, self.region = env.removeprefix("aws://").split("/", 1) if env.startswith("aws://") else ("", "")
        if not self.region or "unknown" in env:
            raise TemplateError(f"stack {stack} has no explicit environment ({env!r}); the demo needs its region")
        self.template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        self.resources: dict[str, dict] = self.template["Resources"]
        assets = json.loads((assembly / f"{stack}.assets.json").read_text())
        self.assets: dict[str, dict] = assets.get("files", {})
        self.physical: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], Any] = {}

    # --- resources by type ---------------------------------------------------------------------------------------

    def of_type(self, type_: str) -> dict[str, dict]:
        return {k: r.get("Properties", {}) for k, r in self.resources.items() if r["Type"] == type_}

    def one(self, type_: str, what: str, where=lambda p: True) -> tuple[str, dict]:
        found = [(k, p) for k, p in self.of_type(type_).items() if where(p)]
        if len(found) != 1:
            raise TemplateError(f"expected one {type_} ({what}) in the template, found {len(found)}")
        return found[0]

    @staticmethod
    def tags(props: Mapping) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in props.get("Tags", []) if isinstance(t.get("Value"), str)}

    def vpc(self) -> tuple[str, dict, bool]:
        """(logical id, properties, has an Amazon-provided IPv6 block)."""
        vpc_id, props = self.one("AWS::EC2::VPC", "the cluster's VPC")
        ipv6 = any(p.get("AmazonProvidedIpv6CidrBlock") and p.get("VpcId") == {"Ref": vpc_id}
                   for p in self.of_type("AWS::EC2::VPCCidrBlock").values())
        return vpc_id, props, ipv6

    def subnets(self) -> list[Subnet]:
        out = []
        for k, p in self.of_type("AWS::EC2::Subnet").items():
            if not isinstance(p.get("AvailabilityZone"), str):
                raise TemplateError(f"subnet {k}: the demo needs explicit zones, got {p.get('AvailabilityZone')!r}")
            out.append(Subnet(k, p["AvailabilityZone"], p["CidrBlock"], p.get("Ipv6CidrBlock"), self.tags(p)))
        return out

    def cidr_reservations(self) -> dict[str, dict]:
        """Logical id -> CreateSubnetCidrReservation parameters (resolved), whether the template has the native
        type or, in regions whose CloudFormation lacks it, the custom resource calling EC2 (eksnet.cidr_reservation)."""
        out = {k: {key: self.resolve(p[key], k) for key in ("SubnetId", "Cidr", "ReservationType", "Description")
                   if key in p}
               for k, p in self.of_type("AWS::EC2::SubnetCidrReservation").items()}
        for k, p in self.of_type("Custom::SubnetCidrReservation").items():
            call = json.loads(self.resolve(p["Create"], k))
            if call.get("action") != "createSubnetCidrReservation":
                raise TemplateError(f"{k}: expected an EC2 createSubnetCidrReservation call, got {call.get('action')}")
            out[k] = call["parameters"]
        return out

    def multus_security_group(self) -> tuple[str, dict]:
        return self.one("AWS::EC2::SecurityGroup", "the Multus security group",
                        lambda p: self.tags(p).get("multus") == "true")

    def nodegroup(self) -> tuple[str, dict]:
        return self.one("AWS::EKS::Nodegroup", "the Multus node group")

    def nodegroup_size(self, ng_logical: str, nodegroup: Mapping) -> dict:
        """The node group's size once deployed: its ScalingConfig, or the size a deploy-time
        ``updateNodegroupConfig`` call (made after the lifecycle hooks exist) gives it."""
        size = {"minSize": nodegroup["ScalingConfig"].get("MinSize", 0),
                "maxSize": nodegroup["ScalingConfig"]["MaxSize"],
                "desiredSize": nodegroup["ScalingConfig"].get("DesiredSize", 0)}
        self.attributes[(ng_logical, "NodegroupName")] = nodegroup["NodegroupName"]
        for k, p in self.of_type("Custom::AWS").items():
            if "updateNodegroupConfig" not in json.dumps(p.get("Create", "")):
                continue
            call = json.loads(self.resolve(p["Create"], k))
            if call["parameters"].get("nodegroupName") == nodegroup["NodegroupName"]:
                size.update(call["parameters"].get("scalingConfig", {}))
                size["set_by"] = k
        return size

    def launch_template(self, nodegroup: Mapping) -> tuple[str, dict]:
        ref = nodegroup.get("LaunchTemplate", {}).get("Id", {})
        if not isinstance(ref, dict) or "Ref" not in ref:
            raise TemplateError("the node group has no launch template of the stack (its user data is the node setup)")
        return ref["Ref"], self.resources[ref["Ref"]]["Properties"]

    def lifecycle_hooks(self) -> dict[str, dict]:
        return self.of_type("AWS::AutoScaling::LifecycleHook")

    def lifecycle_rule(self) -> tuple[str, dict]:
        return self.one("AWS::Events::Rule", "the Auto Scaling lifecycle rule",
                        lambda p: "aws.autoscaling" in p.get("EventPattern", {}).get("source", []))

    def function_of_rule(self, rule: Mapping) -> tuple[str, dict]:
        targets = rule.get("Targets", [])
        if len(targets) != 1:
            raise TemplateError(f"the lifecycle rule has {len(targets)} targets, the demo expects the one Lambda")
        arn = targets[0]["Arn"]
        if "Fn::GetAtt" not in arn:
            raise TemplateError(f"the lifecycle rule's target is not a function of the stack: {arn}")
        logical = arn["Fn::GetAtt"][0]
        return logical, self.resources[logical]["Properties"]

    def function_code_dir(self, function: Mapping) -> Path:
        """The cloud assembly directory the function's S3 key was staged from."""
        key = function.get("Code", {}).get("S3Key")
        if not isinstance(key, str):
            raise TemplateError(f"the function's code is not an asset: {function.get('Code')}")
        return self.asset_path(key)

    def asset_path(self, key: str) -> Path:
        for asset in self.assets.values():
            for dest in asset.get("destinations", {}).values():
                if dest.get("objectKey") == key:
                    return self.assembly / asset["source"]["path"]
        raise TemplateError(f"no asset of the stack is published as {key}")

    def asset_by_bucket_key(self, bucket: str, key: str) -> Path:
        for asset in self.assets.values():
            for dest in asset.get("destinations", {}).values():
                if dest.get("objectKey") == key and dest.get("bucketName", "").replace(
                        "${AWS::AccountId}", "").split("-")[:3] == bucket.split("-")[:3]:
                    return self.assembly / asset["source"]["path"]
        return self.asset_path(key)

    def manifests(self) -> list[dict]:
        """Every Kubernetes object the stack applies (the KubernetesManifest custom resources), with tokens resolved;
        a manifest whose tokens the demo's world does not know is left out (``unresolved`` says which)."""
        out = []
        self.unresolved: dict[str, str] = {}
        for k, p in self.of_type("Custom::AWSCDK-EKS-KubernetesResource").items():
            try:
                manifest = self.resolve(p.get("Manifest"), f"{k}.Manifest")
            except TemplateError as exc:
                self.unresolved[k] = str(exc)
                continue
            if isinstance(manifest, str):
                out += json.loads(manifest)
        return out

    def nad_config(self, name: str) -> dict:
        nads = {m["metadata"]["name"]: m for m in self.manifests() if m.get("kind") == "NetworkAttachmentDefinition"}
        if name not in nads:
            raise TemplateError(f"no NAD {name!r} in the stack (it has {sorted(nads)})")
        return json.loads(nads[name]["spec"]["config"])

    def seed_pod_and_nad(self) -> tuple[dict, str, dict]:
        """(pod manifest, NAD name, NAD CNI config) of the stack's Multus pod and the network it selects."""
        pods = [m for m in self.manifests() if m.get("kind") == "Pod"
                and "k8s.v1.cni.cncf.io/networks" in m.get("metadata", {}).get("annotations", {})]
        if len(pods) != 1:
            raise TemplateError(f"expected one pod with a Multus network annotation, found {len(pods)}")
        network = pods[0]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
        try:
            selection = json.loads(network)[0]["name"]
        except (json.JSONDecodeError, TypeError, KeyError, IndexError):
            selection = network.split(",")[0].split("@")[0].split("/")[-1].strip()
        nads = {m["metadata"]["name"]: m for m in self.manifests() if m.get("kind") == "NetworkAttachmentDefinition"}
        if selection not in nads:
            raise TemplateError(f"the pod selects network {selection!r}, the stack defines {sorted(nads)}"
                                + (f" (manifests not resolved: {self.unresolved})" if self.unresolved else ""))
        return pods[0], selection, json.loads(nads[selection]["spec"]["config"])

    # --- intrinsics ----------------------------------------------------------------------------------------------

    def resolve(self, value: Any, where: str = "") -> Any:
        if isinstance(value, list):
            return [self.resolve(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v, where) for k, v in value.items()}
        (fn, arg), = value.items()
        if fn == "Ref":
            if arg in self.physical:
                return self.physical[arg]
            pseudo = {"AWS::Region": os.environ.get("AWS_DEFAULT_REGION"), "AWS::Partition": "aws",
                      "AWS::URLSuffix": "amazonaws.com"}
            if pseudo.get(arg):
                return pseudo[arg]
            raise TemplateError(f"{where}: Ref {arg} has no physical id in the demo's world")
        if fn == "Fn::GetAtt":
            key = (arg[0], arg[1])
            if key in self.attributes:
                return self.attributes[key]
            raise TemplateError(f"{where}: Fn::GetAtt {arg[0]}.{arg[1]} is not known in the demo's world")
        if fn == "Fn::Select":
            index, items = self.resolve(arg[0], where), self.resolve(arg[1], where)
            return items[int(index)]
        if fn == "Fn::Cidr":
            block, count, bits = (self.resolve(a, where) for a in arg)
            net = ipaddress.ip_network(block)
            return [str(s) for s in net.subnets(new_prefix=net.max_prefixlen - int(bits))][:int(count)]
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(str(self.resolve(p, where)) for p in parts)
        if fn == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg, where)).encode()).decode()
        if fn.startswith("Fn::") or fn == "Condition":
            raise TemplateError(f"{where}: intrinsic {fn} is not supported by the demo")
        return {fn: self.resolve(arg, where)}


def shell_parts(user_data_b64: str) -> list[str]:
    """The shell scripts of a (MIME multipart or plain) user data, decoded, in order."""
    text = base64.b64decode(user_data_b64).decode()
    if not text.startswith("Content-Type:") and "MIME-Version" not in text.split("\n\n", 1)[0]:
        return [text]
    message = email.message_from_string(text)
    return [part.get_payload(decode=True).decode() for part in message.walk()
            if part.get_content_type() == "text/x-shellscript"]


def node_config(user_data_b64: str) -> str | None:
    """The ``application/node.eks.aws`` part (nodeadm's NodeConfig), if any."""
    message = email.message_from_string(base64.b64decode(user_data_b64).decode())
    for part in message.walk():
        if part.get_content_type() == "application/node.eks.aws":
            return part.get_payload(decode=True).decode()
    return None
