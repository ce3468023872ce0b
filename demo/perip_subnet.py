"""One Multus subnet in moto as per-IP mode needs it, for the per-IP tests (tests/multus_perip/) and
``bench_perip``: a dual-stack VPC, the subnet with an explicit CIDR reservation for the per-IP range (IPv4 and
IPv6), and two ENIs, one per "node", tagged as the Multus Lambda tags them. Every call makes its own VPC, so
tests never share ranges. (The demo's own world, ``world.py``, is built from the synthesized template instead;
this smaller one sits beside it with the rest of the AWS stand-in, ``moto_ext.py``.)"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from typing import Any

import boto3

REGION = "eu-central-1"
_vpc_numbers = itertools.count(1)


@dataclass(frozen=True)
class World:
    ec2: Any
    subnet_id: str
    subnet_v4: ipaddress.IPv4Network
    subnet_v6: ipaddress.IPv6Network
    range_v4: ipaddress.IPv4Network  # the explicit reservation: the per-IP range
    range_v6: ipaddress.IPv6Network
    eni_a: str
    eni_b: str

    def held(self, eni: str) -> set[str]:
        """Secondary IPv4 and IPv6 addresses of an ENI, as EC2 reports them."""
        interface = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
        out = {p["PrivateIpAddress"] for p in interface["PrivateIpAddresses"] if not p.get("Primary")}
        out |= {a["Ipv6Address"] for a in interface.get("Ipv6Addresses", [])}
        return {str(ipaddress.ip_address(a)) for a in out}

    def pool(self, eni: str, v4_last: int | None = None, ipv6: bool = True) -> dict[str, Any]:
        """The ipamd.json pool the node setup writes for a per-IP interface on ``eni``."""
        last_v4 = self.range_v4[v4_last] if v4_last is not None else self.range_v4[-1]
        ranges = [[{"subnet": str(self.subnet_v4), "rangeStart": str(self.range_v4[0]), "rangeEnd": str(last_v4)}]]
        if ipv6:
            ranges.append([{"subnet": str(self.subnet_v6), "rangeStart": str(self.range_v6[0]),
                            "rangeEnd": str(self.range_v6[-1])}])
        return {"mode": "per-ip", "eniId": eni, "region": REGION, "ranges": ranges}


def client(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def build_world(endpoint: str) -> World:
    ec2 = client(endpoint)
    n = next(_vpc_numbers)
    vpc = ec2.create_vpc(CidrBlock=f"10.{n % 250}.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    v6_block = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    subnet_v6 = next(ipaddress.IPv6Network(v6_block).subnets(new_prefix=64))
    subnet_v4 = ipaddress.IPv4Network(f"10.{n % 250}.96.0/24")
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=str(subnet_v4), Ipv6CidrBlock=str(subnet_v6),
                               AvailabilityZone=f"{REGION}a")["Subnet"]
    range_v4 = ipaddress.IPv4Network(f"10.{n % 250}.96.128/28")
    range_v6 = ipaddress.IPv6Network(f"{subnet_v6.network_address + 0x1000}/124")
    for cidr in (range_v4, range_v6):
        ec2.create_subnet_cidr_reservation(SubnetId=subnet["SubnetId"], Cidr=str(cidr), ReservationType="explicit",
                                           Description="per-IP pod range")
    enis = []
    for node, primary in (("a", 10), ("b", 11)):
        eni = ec2.create_network_interface(
            SubnetId=subnet["SubnetId"], PrivateIpAddress=str(subnet_v4[primary]),
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
                {"Key": "multus", "Value": "true"},
                {"Key": "eksnet.io/instance-arn", "Value": f"arn:aws:ec2:{REGION}:123456789012:instance/i-{node * 17}"},
            ]}])["NetworkInterface"]
        enis.append(eni["NetworkInterfaceId"])
    return World(ec2, subnet["SubnetId"], subnet_v4, subnet_v6, range_v4, range_v6, enis[0], enis[1])
