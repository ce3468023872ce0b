"""Reading synthesized CloudFormation templates without deploying them: the part of ``eksnet plan`` that
knows CloudFormation, and nothing about EKS.

Why a reader of its own: the IPv6 blocks of a dual-stack VPC exist only at deploy time (the /56 is
Amazon's choice), so a template holds them as ``Fn::Select``/``Fn::Cidr`` over ``Fn::GetAtt
Vpc.Ipv6CidrBlocks``. ``SymbolicCidr`` keeps such a block as *where* it sits (the VPC's /56, then the
index chosen at each split), which is all a plan needs: its size, and a stable name such as
``<vpc /56> + 3 -> /64``. Literal IPv4 blocks stay ``ipaddress`` networks.

Only the intrinsics aws-cdk-lib emits for networks are understood (``Ref``, ``Fn::GetAtt``,
``Fn::Select``, ``Fn::Cidr``, ``Fn::Join`` of strings); anything else resolves to ``None`` and the plan
says it is unknown, rather than guessing.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AMAZON_IPV6_PREFIXLEN = 56  # what AmazonProvidedIpv6CidrBlock gives a VPC


class PlanInputError(Exception):
    """A cloud assembly or template that cannot be read; the CLI prints it as one line and exits 2."""


@dataclass(frozen=True)
class SymbolicCidr:
    """A CIDR block known by its place in a block that only exists at deploy time.

    ``root`` names the unknown block (``vpc`` for the VPC's IPv6 CIDR), ``root_prefixlen`` its size;
    ``steps`` are the ``(index, prefixlen)`` of each ``Fn::Cidr`` split taken from it.
    """

    root: str
    root_prefixlen: int
    steps: tuple[tuple[int, int], ...] = ()
    version: int = 6

    @property
    def prefixlen(self) -> int:
        return self.steps[-1][1] if self.steps else self.root_prefixlen

    @property
    def num_addresses(self) -> int:
        return 2 ** ((128 if self.version == 6 else 32) - self.prefixlen)

    @property
    def offset(self) -> int:
        """Start of the block, in addresses from the start of the root block."""
        bits = 128 if self.version == 6 else 32
        return sum(index * 2 ** (bits - length) for index, length in self.steps)

    def child(self, index: int, prefixlen: int) -> SymbolicCidr:
        return SymbolicCidr(self.root, self.root_prefixlen, (*self.steps, (index, prefixlen)), self.version)

    def relative_to(self, parent: SymbolicCidr) -> str:
        """``<parent> + i -> /n`` when this block lies in ``parent`` (used for reservations in a subnet)."""
        if self.root == parent.root and self.steps[: len(parent.steps)] == parent.steps:
            rest = self.steps[len(parent.steps):]
            return f"<subnet /{parent.prefixlen}>" + "".join(f" + {i} -> /{n}" for i, n in rest)
        return str(self)

    def __str__(self) -> str:
        return f"<{self.root} /{self.root_prefixlen}>" + "".join(f" + {i} -> /{n}" for i, n in self.steps)


Cidr = IPNetwork | SymbolicCidr


def cidr_size(cidr: Cidr) -> int:
    return cidr.num_addresses


def cidr_prefixlen(cidr: Cidr) -> int:
    return cidr.prefixlen


class Template:
    """One stack's template, with the few lookups a plan needs."""

    def __init__(self, stack: str, document: dict[str, Any], *, region: str | None, account: str | None) -> None:
        self.stack = stack
        self.region = region
        self.account = account
        self.resources: dict[str, dict[str, Any]] = document.get("Resources") or {}
        if not isinstance(self.resources, dict):
            raise PlanInputError(f"stack {stack}: the template's Resources is not an object")
        for lid, res in self.resources.items():
            if not isinstance(res, dict) or not isinstance(res.get("Type"), str) \
                    or not isinstance(res.get("Properties", {}), dict):
                raise PlanInputError(f"stack {stack}: resource {lid} is not an object with a Type and object "
                                     "Properties, as CloudFormation requires")
        self._exprs: list[Any] = []  # intrinsics met inside joined strings (see join_with_markers)
        # Export name -> (stack, logical id), shared by every template of the assembly (``load_assembly``).
        self.exports: dict[str, tuple[str, str]] = {}
        self.outputs: dict[str, Any] = document.get("Outputs") or {}

    def of_type(self, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, properties) of each resource of one of ``types``, in template order."""
        for lid, res in self.resources.items():
            if isinstance(res, dict) and res.get("Type") in types:
                yield lid, res.get("Properties") or {}

    def type_of(self, logical_id: str | None) -> str | None:
        res = self.resources.get(logical_id or "")
        return res.get("Type") if isinstance(res, dict) else None

    def props(self, logical_id: str) -> dict[str, Any]:
        return (self.resources.get(logical_id) or {}).get("Properties") or {}

    # --- references ------------------------------------------------------------------------------------

    @staticmethod
    def ref(value: Any) -> str | None:
        """The logical id a ``Ref`` or ``Fn::GetAtt`` points at, else None."""
        if isinstance(value, dict) and len(value) == 1:
            if "Ref" in value and isinstance(value["Ref"], str):
                return value["Ref"]
            att = value.get("Fn::GetAtt")
            if isinstance(att, list) and att and isinstance(att[0], str):
                return att[0]
            if isinstance(att, str):
                return att.split(".", 1)[0]
        return None

    def target(self, value: Any) -> tuple[str, str] | None:
        """(stack, logical id) that a Ref/GetAtt, or an ``Fn::ImportValue`` of another stack's export, points at."""
        local = self.ref(value)
        if local is not None:
            return self.stack, local
        if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("Fn::ImportValue"), str):
            return self.exports.get(value["Fn::ImportValue"])
        return None

    def targets_in(self, value: Any) -> Iterator[tuple[str, str]]:
        """Every (stack, logical id) referenced inside ``value``, across stacks through exports."""
        found = self.target(value)
        if found is not None:
            yield found
        elif isinstance(value, dict):
            for v in value.values():
                yield from self.targets_in(v)
        elif isinstance(value, list):
            for v in value:
                yield from self.targets_in(v)

    @classmethod
    def refs_in(cls, value: Any) -> Iterator[str]:
        """Every logical id referenced anywhere inside ``value`` (Ref, GetAtt, and ${X} of Fn::Sub)."""
        if isinstance(value, dict):
            target = cls.ref(value)
            if target is not None:
                yield target
                return
            sub = value.get("Fn::Sub")
            if sub is not None:
                text = sub[0] if isinstance(sub, list) else sub
                if isinstance(text, str):
                    yield from (m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text))
            for v in value.values():
                yield from cls.refs_in(v)
        elif isinstance(value, list):
            for v in value:
                yield from cls.refs_in(v)

    def join_with_markers(self, value: Any) -> str | None:
        """A string value with every reference written as ``{{ref:LogicalId}}`` and any other intrinsic as
        ``{{expr:N}}`` (see ``unmark``); None if it is neither a string nor a join of them."""
        if isinstance(value, str):
            return value
        target = self.ref(value)
        if target is not None:
            return "{{ref:" + target + "}}"
        if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("Fn::ImportValue"), str):
            found = self.exports.get(value["Fn::ImportValue"])
            return "{{ref:" + "/".join(found) + "}}" if found else None
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Fn::Select", "Fn::Cidr"):
            self._exprs.append(value)
            return "{{expr:" + str(len(self._exprs) - 1) + "}}"
        if isinstance(value, dict) and "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            pieces = [self.join_with_markers(p) for p in parts]
            return None if any(p is None for p in pieces) else sep.join(pieces)  # type: ignore[arg-type]
        if isinstance(value, dict) and "Fn::Base64" in value:
            return self.join_with_markers(value["Fn::Base64"])
        return None

    def unmark(self, value: Any) -> Any:
        """The intrinsic a ``{{ref:..}}`` or ``{{expr:..}}`` marker stands for; other values unchanged."""
        if isinstance(value, str):
            m = re.fullmatch(r"\{\{ref:(.+)\}\}", value)
            if m:
                return {"Ref": m.group(1)}
            m = re.fullmatch(r"\{\{expr:(\d+)\}\}", value)
            if m and int(m.group(1)) < len(self._exprs):
                return self._exprs[int(m.group(1))]
        return value

    def json_value(self, value: Any) -> Any:
        """A JSON document held in a (possibly joined) string, references kept as ``{{ref:Id}}`` strings."""
        text = self.join_with_markers(value)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    # --- CIDRs -----------------------------------------------------------------------------------------

    def vpc_ipv6_root(self, vpc_id: str) -> SymbolicCidr | IPNetwork | None:
        """The IPv6 block of ``vpc_id`` from its ``AWS::EC2::VPCCidrBlock`` (Amazon's /56, an IPAM size, or literal)."""
        for _, p in self.of_type("AWS::EC2::VPCCidrBlock"):
            if self.ref(p.get("VpcId")) != vpc_id:
                continue
            if isinstance(p.get("Ipv6CidrBlock"), str):
                return ipaddress.ip_network(p["Ipv6CidrBlock"])
            if p.get("AmazonProvidedIpv6CidrBlock"):
                return SymbolicCidr("vpc", AMAZON_IPV6_PREFIXLEN)
            if p.get("Ipv6NetmaskLength") is not None:
                return SymbolicCidr("vpc", int(p["Ipv6NetmaskLength"]))
        return None

    def cidr(self, value: Any, *, family: int) -> Cidr | list[Cidr] | None:
        """Resolve a CIDR-valued property (or a list from ``Fn::Cidr``) as far as a template allows."""
        if isinstance(value, str):
            try:
                return ipaddress.ip_network(value, strict=False)
            except ValueError:
                return None
        if not isinstance(value, dict) or len(value) != 1:
            return None
        (fn, args), = value.items()
        if fn == "Fn::Select" and isinstance(args, list) and len(args) == 2:
            items = self.cidr(args[1], family=family)
            try:
                index = int(args[0])
            except (TypeError, ValueError):
                return None
            return items[index] if isinstance(items, list) and 0 <= index < len(items) else None
        if fn == "Fn::Cidr" and isinstance(args, list) and len(args) == 3:
            block = self.cidr(args[0], family=family)
            try:
                count, bits = int(args[1]), int(args[2])
            except (TypeError, ValueError):
                return None
            if block is None or isinstance(block, list):
                return None
            width = 128 if family == 6 else 32
            length = width - bits
            if isinstance(block, SymbolicCidr):
                return [block.child(i, length) for i in range(count)]
            return list(block.subnets(new_prefix=length))[:count]
        if fn == "Fn::GetAtt" and isinstance(args, list) and len(args) == 2:
            target, attribute = args
            kind = self.type_of(target)
            if kind == "AWS::EC2::VPC" and attribute == "Ipv6CidrBlocks":
                root = self.vpc_ipv6_root(target)
                return [root] if root is not None else None
            if kind == "AWS::EC2::VPC" and attribute == "CidrBlock":
                return self.cidr(self.props(target).get("CidrBlock"), family=4)
            if kind == "AWS::EC2::Subnet" and attribute == "Ipv6CidrBlocks":
                own = self.cidr(self.props(target).get("Ipv6CidrBlock"), family=6)
                return [own] if own is not None and not isinstance(own, list) else None
            if kind == "AWS::EC2::Subnet" and attribute == "CidrBlock":
                return self.cidr(self.props(target).get("CidrBlock"), family=4)
        return None


def load_assembly(path: Path) -> list[Template]:
    """Every CloudFormation stack of the cloud assembly at ``path`` (a ``cdk.out`` directory), in manifest order."""
    manifest_file = path / "manifest.json"
    if not path.is_dir():
        raise PlanInputError(f"{path} is not a directory: synthesize first (`npx cdk synth` or `make synth`) "
                             "or give the cloud assembly's path")
    if not manifest_file.is_file():
        raise PlanInputError(f"{path} has no manifest.json: it is not a cloud assembly (run `npx cdk synth`)")
    try:
        manifest = json.loads(manifest_file.read_text())
        artifacts = manifest["artifacts"]
        if not isinstance(artifacts, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlanInputError(f"cannot read {manifest_file}: {exc.__class__.__name__} {exc}".rstrip()) from None
    stacks: list[Template] = []
    for name, artifact in artifacts.items():
        if not isinstance(artifact, dict) or artifact.get("type") != "aws:cloudformation:stack":
            continue
        template_file = path / ((artifact.get("properties") or {}).get("templateFile") or f"{name}.template.json")
        try:
            document = json.loads(template_file.read_text())
        except (OSError, ValueError) as exc:
            raise PlanInputError(f"stack {name}: cannot read {template_file}: {exc}") from None
        env = artifact.get("environment") or ""
        match = re.match(r"^aws://([^/]*)/(.*)$", env)
        account, region = (match.group(1), match.group(2)) if match else (None, None)
        unknown = ("unknown-account", "unknown-region")
        stacks.append(Template(
            stack=name,
            document=document if isinstance(document, dict) else {},
            region=None if region in unknown else region,
            account=None if account in unknown else account,
        ))
    if not stacks:
        raise PlanInputError(f"{manifest_file} lists no CloudFormation stack")
    exports: dict[str, tuple[str, str]] = {}
    for t in stacks:
        for output in t.outputs.values() if isinstance(t.outputs, dict) else ():
            name = (output.get("Export") or {}).get("Name") if isinstance(output, dict) else None
            target = Template.ref(output.get("Value")) if isinstance(output, dict) else None
            if isinstance(name, str) and target is not None:
                exports[name] = (t.stack, target)
    for t in stacks:
        t.exports = exports
    return stacks
