"""Helpers of the VPC tests: build an ``EksVpc`` in a fresh app, and route-table queries over its template."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from eksnet import nag
from eksnet.environment import EksnetStack
from eksnet.vpc import EksVpc
from support.cfn import ref_id, resources, tags
from support.envs import REGION, deploy_env
from support.gates import cfn_lint


def new_stack(azs: tuple[str, ...] = ()) -> EksnetStack:
    """An explicit-environment stack in its own app (nothing synthesized)."""
    app = cdk.App()
    return EksnetStack(app, "VpcTest", deploy_env=deploy_env(azs=azs))


def new_app(outdir: str) -> cdk.App:
    """An app that writes construct paths into template metadata, as under the CDK CLI (cfn-lint reads them)."""
    return cdk.App(outdir=outdir, context={"aws:cdk:enable-path-metadata": True})


def lint_templates(tmp_dir: Path, templates: dict[str, dict], region: str = REGION) -> list:
    """cfn-lint (the project's gate) over templates given as dicts, of stacks in ``region``."""
    paths = []
    for name, template in templates.items():
        paths.append(tmp_dir / f"{name}.template.json")
        paths[-1].write_text(json.dumps(template))
    return cfn_lint(paths, region=region)


def synth_vpc(tmp_dir: str, **props) -> tuple[dict, EksVpc]:
    """Synthesize one ``EksVpc`` with the cdk-nag gate on; returns (template dict, construct)."""
    app = new_app(tmp_dir)
    stack = EksnetStack(app, "VpcTest", deploy_env=deploy_env())
    vpc = EksVpc(stack, "EksVpc", **props)
    nag.add_checks(app)
    return app.synth().get_stack_by_name("VpcTest").template, vpc


@dataclass
class SubnetView:
    logical_id: str
    az: str
    kind: str  # "Public", "Private" or "Multus" (the aws-cdk:subnet-name tag, or our multus tag)
    props: dict
    routes: dict[str, dict] = field(default_factory=dict)  # destination -> route properties

    @property
    def dns64(self) -> bool:
        return self.props.get("EnableDns64") is True

    @property
    def ipv6_native(self) -> bool:
        return self.props.get("Ipv6Native") is True


class Topology:
    def __init__(self, template: dict) -> None:
        self.template = template
        res = template["Resources"]
        self.igw = _only(resources(template, "AWS::EC2::InternetGateway"))
        eigws = resources(template, "AWS::EC2::EgressOnlyInternetGateway")
        self.eigw = _only(eigws) if eigws else None
        rt_of = {ref_id(a["Properties"]["SubnetId"]): ref_id(a["Properties"]["RouteTableId"])
                 for a in resources(template, "AWS::EC2::SubnetRouteTableAssociation").values()}
        routes_of: dict[str, dict[str, dict]] = {}
        for r in resources(template, "AWS::EC2::Route").values():
            p = r["Properties"]
            dest = p.get("DestinationCidrBlock") or p.get("DestinationIpv6CidrBlock")
            table = routes_of.setdefault(ref_id(p["RouteTableId"]), {})
            assert dest not in table, f"two routes to {dest} in {ref_id(p['RouteTableId'])}"
            table[dest] = p
        self.subnets: list[SubnetView] = []
        for lid, r in resources(template, "AWS::EC2::Subnet").items():
            p = r["Properties"]
            t = tags(p)
            kind = "Multus" if t.get("multus") == "true" else t.get("aws-cdk:subnet-name", "?")
            self.subnets.append(SubnetView(lid, p["AvailabilityZone"], kind, p, routes_of.get(rt_of.get(lid), {})))
        self.route_table_of = rt_of
        # NAT gateway logical id -> zone (the zone of the public subnet it sits in)
        az_of = {s.logical_id: s.az for s in self.subnets}
        self.nat_az = {lid: az_of[ref_id(r["Properties"]["SubnetId"])]
                       for lid, r in resources(template, "AWS::EC2::NatGateway").items()}
        assert all(k in res for k in self.nat_az)

    def of_kind(self, kind: str) -> list[SubnetView]:
        found = [s for s in self.subnets if s.kind == kind]
        return sorted(found, key=lambda s: s.az)


def _only(found: dict) -> str:
    assert len(found) == 1, f"expected exactly one, found {sorted(found)}"
    return next(iter(found))
