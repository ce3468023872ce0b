"""The one place where moto 5.2.5 is extended with what our code needs and moto lacks.

It belongs to the demo (the project's AWS stand-in on one machine) and serves the tests and the benchmarks too:
they import ``demo.moto_ext``, so neither ``bench/`` nor ``demo/`` imports ``tests/``.

moto's backends are plain Python objects living in the same process as
``ThreadedMotoServer``, so each extension adds or wraps one response method with
AWS's documented semantics and leaves every other call on moto as it is. Call
``install()`` before starting the server (it is idempotent). The extensions:

1. ``autoscaling:CompleteLifecycleAction`` and ``RecordLifecycleActionHeartbeat``
   (moto: HTTP 500). moto's hooks never put an instance in a wait state, so a test
   opens the wait itself with ``start_lifecycle_action`` (what Auto Scaling does when
   an instance enters ``Pending:Wait`` / ``Terminating:Wait``) and reads the recorded
   completions with ``lifecycle_actions``. As on AWS: the result must be CONTINUE or
   ABANDON, the action is found by token or instance id, and completing an action
   that is not (or no longer) waiting is a ``ValidationError`` ("No active Lifecycle
   Action found ...").
2. ``ec2:ModifyNetworkInterfaceAttribute`` with ``Attachment.DeleteOnTermination``
   (moto: accepted, not stored): stored on the ENI, shown in its ``Attachment``, and
   honoured by moto's own instance termination.
3. ``ec2:AttachNetworkInterface`` (moto: overwrites silently): refused, as AWS does,
   when the device index of the instance is taken, when the interface is already
   attached, or when the interface and the instance are in different zones.
4. ``ec2:DeleteNetworkInterface`` (moto: deletes an attached ENI):
   ``InvalidNetworkInterface.InUse`` while the interface is attached.
5. Prefix delegation on ``ec2:CreateNetworkInterface`` (moto: ``Ipv4PrefixCount`` /
   ``Ipv6PrefixCount`` ignored): delegates that many free /28 (IPv4) and /80 (IPv6)
   prefixes of the subnet, shown as ``Ipv4Prefixes`` / ``Ipv6Prefixes``.
6. ``ClientToken`` on ``ec2:CreateNetworkInterface`` (moto: ignored): a repeated token
   returns the interface the first request created instead of a new one (EC2's
   idempotency contract).
7. Lifecycle states in ``autoscaling:DescribeAutoScalingGroups`` (moto: always
   ``InService``): an instance whose action ``start_lifecycle_action`` opened shows
   ``Pending:Wait`` / ``Terminating:Wait`` until the action is completed; then
   ``InService`` (launch, CONTINUE), ``Terminating`` (launch, ABANDON) or
   ``Terminating:Proceed`` (terminate), as Auto Scaling's instance lifecycle shows them.

Per-IP mode (node_runtime/perip.py, tests/multus_perip/):

8. ``ec2:AssignPrivateIpAddresses`` / ``ec2:AssignIpv6Addresses`` with explicit addresses
   (moto: assigns an address another interface holds, and addresses outside the subnet):
   without ``AllowReassignment`` an address held by another interface of the VPC is refused
   (``InvalidIPAddress.InUse``), as is an address outside the subnet's CIDR blocks
   (``InvalidParameterValue``); nothing of a refused request is assigned. Every explicit
   assignment request is recorded (``assignment_requests``) so tests can check that
   ``AllowReassignment`` is never sent.
9. ``ec2:UnassignPrivateIpAddresses`` / ``ec2:UnassignIpv6Addresses`` (moto: silently ignores
   addresses the interface does not hold): ``InvalidParameterValue`` ("... not assigned to
   interface ..."), as AWS answers.
"""

from __future__ import annotations

import ipaddress
import threading
import uuid
from dataclasses import dataclass, field

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.moto_server import threaded_moto_server
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from werkzeug.serving import make_server

DEFAULT_ACCOUNT = "123456789012"
_LOCK = threading.RLock()
_INSTALLED = False
_ORIGINAL: dict[str, object] = {}


# --- 1. lifecycle actions ------------------------------------------------------------------------------------------

@dataclass
class LifecycleAction:
    group: str
    hook: str
    instance_id: str
    token: str
    result: str | None = None
    heartbeats: int = 0


@dataclass
class LifecycleActions:
    """Per account and region: the actions waiting for completion and those completed, in order."""

    waiting: list[LifecycleAction] = field(default_factory=list)
    completed: list[LifecycleAction] = field(default_factory=list)

    def results_for(self, instance_id: str) -> list[str]:
        return [a.result for a in self.completed if a.instance_id == instance_id]


def lifecycle_actions(region: str, account: str = DEFAULT_ACCOUNT) -> LifecycleActions:
    backend = autoscaling_backends[account][region]
    with _LOCK:
        if not hasattr(backend, "_eksnet_lifecycle_actions"):
            backend._eksnet_lifecycle_actions = LifecycleActions()
        return backend._eksnet_lifecycle_actions


def start_lifecycle_action(region: str, group: str, hook: str, instance_id: str,
                           account: str = DEFAULT_ACCOUNT) -> str:
    """Put ``instance_id`` in the wait state of ``hook`` (which must exist on ``group``); returns the action token."""
    backend = autoscaling_backends[account][region]
    if not backend.describe_lifecycle_hooks(group, [hook]):
        raise ValueError(f"no lifecycle hook {hook!r} on Auto Scaling group {group!r}")
    token = str(uuid.uuid4())
    state = lifecycle_actions(region, account)
    (spec,) = backend.describe_lifecycle_hooks(group, [hook])
    waiting = "Pending:Wait" if spec.lifecycle_transition.endswith("LAUNCHING") else "Terminating:Wait"
    with _LOCK:
        state.waiting.append(LifecycleAction(group=group, hook=hook, instance_id=instance_id, token=token))
        _set_lifecycle_state(backend, group, instance_id, waiting)
    return token


def _set_lifecycle_state(backend, group: str, instance_id: str, lifecycle_state: str) -> None:
    for member in backend.autoscaling_groups[group].instance_states:
        if member.instance.id == instance_id:
            member.lifecycle_state = lifecycle_state


def _find_waiting(resp: AutoScalingResponse) -> LifecycleAction:
    group = resp._get_param("AutoScalingGroupName")
    hook = resp._get_param("LifecycleHookName")
    token = resp._get_param("LifecycleActionToken")
    instance_id = resp._get_param("InstanceId")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified")
    if not resp.autoscaling_backend.describe_lifecycle_hooks(group, [hook]):
        raise ValidationError(f"No Lifecycle Hook found with name {hook} for group {group}")
    state = lifecycle_actions(resp.region, resp.current_account)
    for action in state.waiting:
        if action.group == group and action.hook == hook and (
            action.token == token if token else action.instance_id == instance_id
        ):
            return action
    which = f"token {token}" if token else f"instance ID {instance_id}"
    raise ValidationError(f"No active Lifecycle Action found with {which}")


def _complete_lifecycle_action(self: AutoScalingResponse) -> EmptyResult:
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid LifecycleActionResult {result!r}: must be CONTINUE or ABANDON")
    state = lifecycle_actions(self.region, self.current_account)
    with _LOCK:
        action = _find_waiting(self)
        state.waiting.remove(action)
        action.result = result
        state.completed.append(action)
        (spec,) = self.autoscaling_backend.describe_lifecycle_hooks(action.group, [action.hook])
        if spec.lifecycle_transition.endswith("LAUNCHING"):
            after = "InService" if result == "CONTINUE" else "Terminating"
        else:
            after = "Terminating:Proceed"
        _set_lifecycle_state(self.autoscaling_backend, action.group, action.instance_id, after)
    return EmptyResult()


def _record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> EmptyResult:
    with _LOCK:
        _find_waiting(self).heartbeats += 1
    return EmptyResult()


# --- 2-4. ENI attachment semantics ---------------------------------------------------------------------------------

def _eni(resp: ElasticNetworkInterfaces, eni_id: str):
    return resp.ec2_backend.get_network_interface(eni_id)


def _modify_network_interface_attribute(self: ElasticNetworkInterfaces):
    attachment_id = self._get_param("Attachment.AttachmentId")
    delete_on_termination = self._get_param("Attachment.DeleteOnTermination")
    if attachment_id is not None or delete_on_termination is not None:
        eni = _eni(self, self._get_param("NetworkInterfaceId"))
        if not eni.attachment_id or eni.attachment_id != attachment_id:
            raise EC2ClientError("InvalidAttachmentID.NotFound",
                                 f"The attachment ID '{attachment_id}' does not exist")
        eni.delete_on_termination = str(delete_on_termination).lower() == "true"
    return _ORIGINAL["modify_network_interface_attribute"](self)


def _attach_network_interface(self: ElasticNetworkInterfaces):
    eni_id = self._get_param("NetworkInterfaceId")
    instance_id = self._get_param("InstanceId")
    device_index = int(self._get_param("DeviceIndex"))
    eni = _eni(self, eni_id)
    instance = self.ec2_backend.get_instance(instance_id)
    if eni.instance is not None:
        raise EC2ClientError("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")
    if device_index in instance.nics:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Instance '{instance_id}' already has an interface attached at device index '{device_index}'.",
        )
    if eni.subnet.availability_zone != instance.availability_zone:
        raise EC2ClientError(
            "InvalidParameterCombination",
            "You may not attach a network interface to an instance if they are not in the same availability zone",
        )
    return _ORIGINAL["attach_network_interface"](self)


def _delete_network_interface(self: ElasticNetworkInterfaces):
    eni_id = self._get_param("NetworkInterfaceId")
    eni = _eni(self, eni_id)
    if eni.instance is not None:
        raise EC2ClientError("InvalidNetworkInterface.InUse", f"The network interface '{eni_id}' is currently in use.")
    return _ORIGINAL["delete_network_interface"](self)


# --- 5. prefix delegation ------------------------------------------------------------------------------------------

def _taken_in_subnet(backend, subnet) -> tuple[set, list]:
    addresses, prefixes = set(), []
    for other in backend.enis.values():
        if other.subnet is not subnet:
            continue
        for a in other.private_ip_addresses:
            addresses.add(ipaddress.ip_address(a["PrivateIpAddress"]))
        addresses.update(ipaddress.ip_address(a) for a in other.ipv6_addresses if a)
        prefixes += [ipaddress.ip_network(p["Ipv4Prefix"]) for p in getattr(other, "ipv4_prefixes", [])]
        prefixes += [ipaddress.ip_network(p["Ipv6Prefix"]) for p in getattr(other, "ipv6_prefixes", [])]
    return addresses, prefixes


def _free_prefixes(cidr: ipaddress._BaseNetwork, new_prefix: int, count: int, taken: tuple[set, list],
                   reserved: int) -> list:
    addresses, prefixes = taken
    found = []
    for candidate in cidr.subnets(new_prefix=new_prefix):
        if len(found) == count:
            break
        # AWS reserves the first addresses of a subnet: a prefix may not hold them, nor an address in use.
        if int(candidate.network_address) - int(cidr.network_address) < reserved:
            continue
        if any(a in candidate for a in addresses) or any(candidate.overlaps(p) for p in prefixes + found):
            continue
        found.append(candidate)
    if len(found) < count:
        raise EC2ClientError("InsufficientCidrBlocks",
                             "There are not enough free cidr blocks in the specified subnet to satisfy the request.")
    return found


def _create_network_interface(self: ElasticNetworkInterfaces):
    token = self._get_param("ClientToken")
    with _LOCK:  # one creation per client token, even for concurrent requests
        tokens = self.ec2_backend.__dict__.setdefault("_eksnet_eni_client_tokens", {})
        if token and token in tokens:
            return ActionResult({"NetworkInterface": tokens[token]})
        result = _create_with_prefixes(self)
        if token:
            tokens[token] = result.result["NetworkInterface"]
        return result


def _create_with_prefixes(self: ElasticNetworkInterfaces):
    v4_count = self._get_int_param("Ipv4PrefixCount", 0)
    v6_count = self._get_int_param("Ipv6PrefixCount", 0)
    result = _ORIGINAL["create_network_interface"](self)
    if not (v4_count or v6_count):
        return result
    eni = result.result["NetworkInterface"]
    subnet = eni.subnet
    try:
        with _LOCK:
            taken = _taken_in_subnet(self.ec2_backend, subnet)
            v4 = _free_prefixes(ipaddress.ip_network(subnet.cidr_block), 28, v4_count, taken, 4) if v4_count else []
            v6_blocks = [a["ipv6CidrBlock"] for a in subnet.ipv6_cidr_block_associations.values()]
            if v6_count and not v6_blocks:
                raise EC2ClientError("InvalidParameterValue", f"Subnet {subnet.id} has no IPv6 CIDR block")
            v6 = _free_prefixes(ipaddress.ip_network(v6_blocks[0]), 80, v6_count, taken, 4) if v6_count else []
            eni.ipv4_prefixes = [{"Ipv4Prefix": str(p)} for p in v4]
            eni.ipv6_prefixes = [{"Ipv6Prefix": str(p)} for p in v6]
    except EC2ClientError:
        self.ec2_backend.delete_network_interface(eni.id)  # AWS creates nothing when the request fails
        raise
    return result


# --- 8-9. per-IP mode: explicit assignments arbitrated by EC2 --------------------------------------------------------

@dataclass(frozen=True)
class AssignmentRequest:
    action: str
    eni: str
    addresses: tuple[str, ...]
    allow_reassignment: bool


_ASSIGNMENT_REQUESTS: list[AssignmentRequest] = []


def assignment_requests() -> list[AssignmentRequest]:
    """Every explicit Assign* request the server saw (this process), in order."""
    with _LOCK:
        return list(_ASSIGNMENT_REQUESTS)


def _norm(address: str) -> ipaddress._BaseAddress:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise EC2ClientError("InvalidParameterValue", f"Invalid value '{address}' for IP address") from None


def _holders(backend, eni) -> dict:
    """Address -> id of the interface holding it, over every other interface of the ENI's VPC."""
    held = {}
    for other in backend.enis.values():
        if other is eni or other.subnet.vpc_id != eni.subnet.vpc_id:
            continue
        for a in other.private_ip_addresses:
            held[_norm(a["PrivateIpAddress"])] = other.id
        for a in other.ipv6_addresses:
            if a:
                held[_norm(a)] = other.id
    return held


def _check_explicit(self: ElasticNetworkInterfaces, action: str, param: str, blocks: list) -> None:
    addresses = self._get_param(param, [])
    if not addresses:
        return
    eni = _eni(self, self._get_param("NetworkInterfaceId"))
    allow = str(self._get_param("AllowReassignment", False)).lower() == "true"
    with _LOCK:
        _ASSIGNMENT_REQUESTS.append(AssignmentRequest(action, eni.id, tuple(addresses), allow))
        subnets = [ipaddress.ip_network(b) for b in blocks(eni.subnet)]
        holders = _holders(self.ec2_backend, eni)
        for address in addresses:
            ip = _norm(address)
            if not any(ip.version == n.version and ip in n for n in subnets):
                raise EC2ClientError("InvalidParameterValue",
                                     f"Address {address} does not fall within the subnet's address range")
            if ip in holders and not allow:
                raise EC2ClientError("InvalidIPAddress.InUse", f"Address {address} is in use.")


def _v4_blocks(subnet) -> list:
    return [subnet.cidr_block]


def _v6_blocks(subnet) -> list:
    return [a["ipv6CidrBlock"] for a in subnet.ipv6_cidr_block_associations.values()]


def _assign_private_ip_addresses(self: ElasticNetworkInterfaces):
    with _LOCK:  # check and assign as one step: two nodes asking at once cannot both win
        _check_explicit(self, "AssignPrivateIpAddresses", "PrivateIpAddresses", _v4_blocks)
        return _ORIGINAL["assign_private_ip_addresses"](self)


def _assign_ipv6_addresses(self: ElasticNetworkInterfaces):
    with _LOCK:
        _check_explicit(self, "AssignIpv6Addresses", "Ipv6Addresses", _v6_blocks)
        return _ORIGINAL["assign_ipv6_addresses"](self)


def _check_held(self: ElasticNetworkInterfaces, param: str) -> None:
    eni = _eni(self, self._get_param("NetworkInterfaceId"))
    mine = {_norm(a["PrivateIpAddress"]) for a in eni.private_ip_addresses}
    mine |= {_norm(a) for a in eni.ipv6_addresses if a}
    missing = [a for a in self._get_param(param, []) if _norm(a) not in mine]
    if missing:
        raise EC2ClientError("InvalidParameterValue",
                             f"Some of the specified addresses are not assigned to interface {eni.id}")


def _unassign_private_ip_addresses(self: ElasticNetworkInterfaces):
    with _LOCK:
        _check_held(self, "PrivateIpAddresses")
        return _ORIGINAL["unassign_private_ip_addresses"](self)


def _unassign_ipv6_addresses(self: ElasticNetworkInterfaces):
    with _LOCK:
        _check_held(self, "Ipv6Addresses")
        return _ORIGINAL["unassign_ipv6_addresses"](self)


# --- installation --------------------------------------------------------------------------------------------------

def install() -> None:
    """Patch moto's response classes once per process (before or after the server starts: dispatch is per request)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        AutoScalingResponse.complete_lifecycle_action = _complete_lifecycle_action
        AutoScalingResponse.record_lifecycle_action_heartbeat = _record_lifecycle_action_heartbeat
        for name, wrapper in (
            ("modify_network_interface_attribute", _modify_network_interface_attribute),
            ("attach_network_interface", _attach_network_interface),
            ("delete_network_interface", _delete_network_interface),
            ("create_network_interface", _create_network_interface),
            ("assign_private_ip_addresses", _assign_private_ip_addresses),
            ("assign_ipv6_addresses", _assign_ipv6_addresses),
            ("unassign_private_ip_addresses", _unassign_private_ip_addresses),
            ("unassign_ipv6_addresses", _unassign_ipv6_addresses),
        ):
            _ORIGINAL[name] = getattr(ElasticNetworkInterfaces, name)
            setattr(ElasticNetworkInterfaces, name, wrapper)
        _INSTALLED = True


def serve():
    """moto's server on a free loopback port with these extensions installed: ``(server, endpoint_url)``.

    The one way tests, benchmarks and the demo start their AWS double; the caller stops the server.
    """
    import logging
    import socket

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    install()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _SerialMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


# moto's backends are process-wide Python objects without locks: concurrent requests (the reconciler's thread
# pool) can race inside them (``RuntimeError: dictionary changed size during iteration`` in a describe while
# another request creates). AWS serves concurrent calls consistently; the double does so by answering one request
# at a time, each answer produced whole under this lock, shared by every server of the process as the backends are.
_ONE_REQUEST_AT_A_TIME = threading.Lock()


class _SerialMotoServer(ThreadedMotoServer):
    """moto's threaded server, answering one request at a time (``_ONE_REQUEST_AT_A_TIME``)."""

    def _server_entry(self) -> None:  # moto's own, with the application wrapped
        app = threaded_moto_server.DomainDispatcherApplication(threaded_moto_server.create_backend_app)

        def serial(environ, start_response):
            with _ONE_REQUEST_AT_A_TIME:
                return [b"".join(app(environ, start_response))]

        self._server = make_server(self._ip_address, self._port, serial, True,
                                   request_handler=threaded_moto_server.MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
