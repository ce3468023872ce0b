"""A node's IMDSv2 at 169.254.169.254:80 inside its network namespace, answered from moto's state.

Each GET describes the instance and its ENIs in moto at that moment (as EC2's IMDS reflects attachments as they
happen): ``network/interfaces/macs/`` lists every attached ENI, and each MAC has the keys the node setup reads
(``device-number``, ``interface-id``, ``ipv4-prefix``, ``ipv6-prefix``, ``local-ipv4s``, ``ipv6s``, subnet
CIDRs...). Tokens: ``PUT /latest/api/token`` with a TTL header, then the ``X-aws-ec2-metadata-token`` header on every
GET (401 without), as IMDSv2 requires.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from node_runtime.lab import listening_socket

IMDS_ADDRESS = "169.254.169.254"


class NodeImds:
    """The IMDS of one instance: ``start()`` serves it in ``namespace``, ``stop()`` closes it."""

    def __init__(self, namespace: str, instance_id: str, ec2, account: str, region: str) -> None:
        self.namespace, self.instance_id, self.ec2 = namespace, instance_id, ec2
        self.account, self.region = account, region
        self.tokens: set[str] = set()
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None

    # --- the data ------------------------------------------------------------------------------------------------

    def _instance(self) -> dict:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return reservations[0]["Instances"][0]

    def _enis(self) -> dict[str, dict]:
        enis = self.ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [self.instance_id]}])["NetworkInterfaces"]
        return {e["MacAddress"]: e for e in enis}

    def _subnet(self, subnet_id: str) -> dict:
        return self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]

    def _mac_keys(self, eni: dict) -> dict[str, str]:
        subnet = self._subnet(eni["SubnetId"])
        keys = {
            "device-number": str(eni["Attachment"]["DeviceIndex"]),
            "interface-id": eni["NetworkInterfaceId"],
            "mac": eni["MacAddress"],
            "subnet-id": eni["SubnetId"],
            "vpc-id": eni["VpcId"],
            "owner-id": self.account,
            "security-group-ids": "\n".join(g["GroupId"] for g in eni.get("Groups", [])),
            "local-ipv4s": "\n".join(a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", [])),
            "subnet-ipv4-cidr-block": subnet["CidrBlock"],
        }
        if eni.get("Ipv6Addresses"):
            keys["ipv6s"] = "\n".join(a["Ipv6Address"] for a in eni["Ipv6Addresses"])
        v6 = [a["Ipv6CidrBlock"] for a in subnet.get("Ipv6CidrBlockAssociationSet", [])]
        if v6:
            keys["subnet-ipv6-cidr-blocks"] = "\n".join(v6)
        if eni.get("Ipv4Prefixes"):
            keys["ipv4-prefix"] = "\n".join(p["Ipv4Prefix"] for p in eni["Ipv4Prefixes"])
        if eni.get("Ipv6Prefixes"):
            keys["ipv6-prefix"] = "\n".join(p["Ipv6Prefix"] for p in eni["Ipv6Prefixes"])
        return keys

    def lookup(self, path: str) -> str | None:
        """The body of ``GET /latest/<path>``, or None for a 404."""
        if path == "dynamic/instance-identity/document":
            inst = self._instance()
            return json.dumps({"accountId": self.account, "region": self.region, "instanceId": self.instance_id,
                               "availabilityZone": inst["Placement"]["AvailabilityZone"],
                               "instanceType": inst["InstanceType"], "imageId": inst["ImageId"],
                               "privateIp": inst.get("PrivateIpAddress")})
        if not path.startswith("meta-data/"):
            return None
        key = path[len("meta-data/"):]
        if key == "instance-id":
            return self.instance_id
        if key == "placement/availability-zone":
            return self._instance()["Placement"]["AvailabilityZone"]
        if key == "placement/region":
            return self.region
        if key == "instance-type":
            return self._instance()["InstanceType"]
        if key == "mac":
            return next((m for m, e in self._enis().items() if e["Attachment"]["DeviceIndex"] == 0), None)
        macs = "network/interfaces/macs/"
        if key == macs:
            enis = self._enis()
            return "\n".join(f"{m}/" for m in sorted(enis, key=lambda m: enis[m]["Attachment"]["DeviceIndex"]))
        if key.startswith(macs):
            mac, _, sub = key[len(macs):].partition("/")
            eni = self._enis().get(mac)
            if eni is None:
                return None
            keys = self._mac_keys(eni)
            if sub in ("", "/"):
                return "\n".join(sorted(keys))
            return keys.get(sub.rstrip("/"))
        return None

    # --- the server ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):  # noqa: N802
                imds.requests += 1
                if self.path != "/latest/api/token":
                    return self._send(404)
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self._send(400)
                token = secrets.token_urlsafe(24)
                imds.tokens.add(token)
                self._send(200, token)

            def do_GET(self):  # noqa: N802
                imds.requests += 1
                if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                    return self._send(401)
                if not self.path.startswith("/latest/"):
                    return self._send(404)
                try:
                    body = imds.lookup(self.path[len("/latest/"):])
                except Exception as exc:  # noqa: BLE001 - a 500 names it, as the real IMDS would fail
                    return self._send(500, repr(exc))
                self._send(200, body) if body is not None else self._send(404)

            def log_message(self, *args):
                pass

        sock = listening_socket(self.namespace, IMDS_ADDRESS, 80)
        server = ThreadingHTTPServer((IMDS_ADDRESS, 80), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name=f"imds-{self.namespace}", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
