"""Node bootstrap for Multus: the node runtime shipped and installed, the Multus ENIs configured on every boot and
whenever one appears, and kubelet gated on their readiness.

On an AL2023 EKS node, cloud-init runs user-data shell parts before ``nodeadm-run.service`` starts
kubelet. What this module adds to a node group's shell user data:

* ``/etc/eksnet/multus.json``, the node config (``MultusInterfaces.node_config()``): the Multus ENIs the
  node expects by EC2 device index, their names (``multus<index>``), pools and address mode;
* the node runtime asset (``NodeRuntimeAsset``: ``node_runtime`` + pyroute2, downloaded with ``aws s3 cp``
  on its own line), installed with the installer ``make cni-bin`` uses (``python -m node_runtime.install``);
* the node units (``python -m node_runtime.node.units``): ``eksnet-multus-interfaces.service`` runs the
  node setup (``python -m node_runtime.node.setup``: waits for each ENI, renames it, sets rp_filter, brings
  it up, writes the ``eksnet-ipamd`` pools from its delegated prefixes and reloads the daemon) at every
  boot; a udev rule runs it again whenever an ENI is attached; a kubelet drop-in starts kubelet only when
  ``python -m node_runtime.node.ready`` passes (every ENI attached and configured, every pool served).

Every step that needs AWS or a package manager (``aws s3 cp``, ``dnf``) is a line of its own, so
``make demo`` can name and replace exactly those.
"""

from __future__ import annotations

import enum
import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets

from constructs import Construct
from eksnet import typecheck, validate
from eksnet.multus.nad import MultusTypeError, _check_fields

NODE_CONFIG = "/etc/eksnet/multus.json"
SCRIPT_UNIT = "eksnet-multus-interfaces.service"
HOTPLUG_UNIT = "eksnet-multus-hotplug.service"
KUBELET_DROPIN = "/etc/systemd/system/kubelet.service.d/90-eksnet-multus.conf"
IPAMD_UNIT = "eksnet-ipamd.service"
IPAMD_CONFIG = "/etc/eksnet/ipamd.json"
CNI_BIN_DIR = "/opt/cni/bin"
RUNTIME_SRC_DIR = "/opt/eksnet/src"



class RpFilter(enum.Enum):
    """Reverse-path filtering on a Multus interface. The kernel uses max(all, interface): LOOSE is in force
    whatever ``all`` says; OFF only where ``net.ipv4.conf.all.rp_filter`` is 0 too."""

    OFF = 0
    STRICT = 1
    LOOSE = 2


class AddressMode(enum.Enum):
    """How a Multus ENI's pod addresses reach the VPC.

    PREFIX: the ENI carries delegated prefixes (IPv4 /28, IPv6 /80); the pool is those prefixes, no EC2 call per pod.
    PER_IP: pods get chosen addresses from a range reserved in the subnet; each is assigned to the ENI through EC2
    when the pod starts (``eksnet.multus`` per-IP mode).
    """

    PREFIX = "prefix"
    PER_IP = "per-ip"


@dataclass(frozen=True)
class MultusInterfaces:
    """The Multus ENIs a node expects, by EC2 device index (the Lambda attaches them at 1..n).

    * ``device_indexes`` [(1,)]: each is named ``<name_prefix><index>`` (``multus1``, ``multus2``...) and its
      ``eksnet-ipamd`` pool has the same name.
    * ``rp_filter`` [LOOSE]: the seed's asymmetric paths (VPC CNI on eth0, Multus on multusN) need it
      loose or off.
    * ``wait_seconds`` [300]: how long the boot-time setup waits for the ENIs (the hotplug rule and the
      kubelet gate take over after that).
    * ``ipam_pools`` [True]: write ``/etc/eksnet/ipamd.json`` with one pool per ENI from its
      delegated IPv4 and IPv6 prefixes (IMDS ``ipv4-prefix`` / ``ipv6-prefix``).
    * ``ipv4_prefix_count`` / ``ipv6_prefix_count`` [0]: prefixes each ENI is given (the setup waits until IMDS
      shows them): a map device index -> count, or one count for every ENI.
    * ``modes`` [{}]: device index -> ``AddressMode`` (default PREFIX); ``per_ip_ranges``: device index -> range
      sets (``[[{"subnet": ..., "rangeStart": ...}]]``) of a PER_IP interface's pool.
    """

    device_indexes: tuple[int, ...] = (1,)
    name_prefix: str = "multus"
    rp_filter: RpFilter = RpFilter.LOOSE
    wait_seconds: int = 300
    ipam_pools: bool = True
    ipv4_prefix_count: int | Mapping[int, int] = 0
    ipv6_prefix_count: int | Mapping[int, int] = 0
    modes: Mapping[int, AddressMode] = field(default_factory=dict)
    per_ip_ranges: Mapping[int, Sequence[Sequence[Mapping[str, str]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_fields(self)
        object.__setattr__(self, "device_indexes", tuple(self.device_indexes))
        if not self.device_indexes:
            raise ValueError("MultusInterfaces needs at least one device index (the Multus ENIs attach at 1..n)")
        if len(set(self.device_indexes)) != len(self.device_indexes):
            raise ValueError(f"device_indexes lists an index twice: {self.device_indexes}")
        for i in self.device_indexes:
            if not isinstance(i, int) or not 1 <= i <= 31:
                raise ValueError(f"device index {i!r}: Multus ENIs attach at 1..31 (0 is the primary ENI, eth0)")
        if not validate.is_interface_name_prefix(self.name_prefix):
            raise ValueError(
                f"name_prefix {self.name_prefix!r}: 1-13 lower-case letters or digits, starting with a letter "
                "(the interface name with its index must fit the kernel's 15 characters)"
            )
        if self.name_prefix in ("eth", "ens", "enp", "lo"):
            raise ValueError(f"name_prefix {self.name_prefix!r} collides with the names the kernel and udev give")
        if not 0 <= self.wait_seconds <= 3600:
            raise ValueError(f"wait_seconds {self.wait_seconds} must be between 0 and 3600")
        for what in ("ipv4_prefix_count", "ipv6_prefix_count"):
            for i in self.device_indexes:
                count = self._count(what, i)
                if not isinstance(count, int) or not 0 <= count <= 16:
                    raise ValueError(f"{what} of device index {i}: {count!r} is not 0..16")
        stray = (set(self.modes) | set(self.per_ip_ranges)) - set(self.device_indexes)
        if stray:
            raise ValueError(f"modes/per_ip_ranges name device indexes {sorted(stray)} not in {self.device_indexes}")

    def _count(self, what: str, index: int) -> int:
        value = getattr(self, what)
        return value.get(index, 0) if isinstance(value, Mapping) else value

    @property
    def names(self) -> dict[int, str]:
        """Device index -> interface name on the node (what a NAD's ``master`` names)."""
        return {i: f"{self.name_prefix}{i}" for i in self.device_indexes}

    @property
    def pools(self) -> dict[int, str]:
        """Device index -> ``eksnet-ipamd`` pool name (what ``EksnetIpam(pool=...)`` names)."""
        return self.names

    def mode(self, index: int) -> AddressMode:
        return self.modes.get(index, AddressMode.PREFIX)

    def node_config(self) -> dict:
        """The content of ``/etc/eksnet/multus.json`` (read by ``node_runtime.node``)."""
        interfaces = []
        for i in self.device_indexes:
            entry = {"deviceIndex": i, "name": self.names[i], "pool": self.pools[i], "mode": self.mode(i).value,
                     "ipv4Prefixes": self._count("ipv4_prefix_count", i),
                     "ipv6Prefixes": self._count("ipv6_prefix_count", i)}
            if i in self.per_ip_ranges:
                entry["ranges"] = [[dict(r) for r in s] for s in self.per_ip_ranges[i]]
            interfaces.append(entry)
        return {"interfaces": interfaces, "rpFilter": self.rp_filter.value, "waitSeconds": self.wait_seconds,
                "ipamPools": self.ipam_pools, "ipamdConfig": IPAMD_CONFIG, "ipamdUnit": IPAMD_UNIT}


def _staged_runtime(asset_outdir: Path, fingerprint: str) -> Path:
    """The bundle (``node_runtime`` + ``pyroute2``, the installer's own file set: no ``__pycache__``, ``*.pyc`` or
    ``node_runtime/lab.py``, the local test harness: ``install.NOT_SHIPPED``) as one zip, at the very path where
    aws-cdk-lib stages a file asset of this fingerprint (``asset.<hash>.zip``): written on the first synth into
    this cloud assembly, then found there, neither copied nor hashed again. A zip, not a directory: aws-cdk-lib
    would copy a directory asset to ``asset.<hash><extension of the source>`` beside it, a second copy."""
    from node_runtime.install import bundle_zip

    target = asset_outdir / f"asset.{hashlib.sha256(fingerprint.encode()).hexdigest()}.zip"
    if not target.is_file():
        asset_outdir.mkdir(parents=True, exist_ok=True)
        bundle_zip(str(target))  # atomic: a concurrent synth into the same assembly finds all or nothing
    return target


class NodeRuntimeAsset(Construct):
    """``node_runtime`` plus pyroute2 as one S3 asset (a zip). Attribute: ``asset``.

    The asset is named by ``node_runtime.install.bundle_fingerprint`` (a hash of the sources), so aws-cdk-lib
    neither fingerprints nor copies the bundle; the bundle is staged in the cloud assembly once.
    """

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        from node_runtime.install import bundle_fingerprint

        fingerprint = bundle_fingerprint()
        stage = _staged_runtime(Path(cdk.Stage.of(self).asset_outdir), fingerprint)
        self.asset = s3_assets.Asset(self, "Asset", path=str(stage), asset_hash=fingerprint,
                                     asset_hash_type=cdk.AssetHashType.CUSTOM)


@dataclass(frozen=True)
class NodeRuntimeInstall:
    """How the node runtime is installed on a node.

    * ``python`` ["/usr/bin/python3.11"]: the real interpreter the CNI executables name (never a shim);
      ``python_package`` ["python3.11"] is installed with dnf when it is missing (AL2023's own python3
      is 3.9, older than ``node_runtime`` supports).
    * ``cni_bin_dir`` ["/opt/cni/bin"]: where kubelet and Multus look for CNI executables.
    * ``start_ipamd`` [True]: enable and start ``eksnet-ipamd.service``.
    * ``src_dir`` ["/opt/eksnet/src"]: where the asset is unpacked; ``unit_dir``
      ["/etc/systemd/system"]: where the installer writes the daemon's unit.
    * ``daemon_dir`` ["/usr/local/sbin"]: where ``eksnet-ipamd`` goes (off the CNI bin dir, so nothing
      scanning it starts a daemon); the unit's ExecStart follows.
    """

    python: str = "/usr/bin/python3.11"
    python_package: str | None = "python3.11"
    cni_bin_dir: str = CNI_BIN_DIR
    start_ipamd: bool = True
    src_dir: str = RUNTIME_SRC_DIR
    unit_dir: str = "/etc/systemd/system"
    daemon_dir: str = "/usr/local/sbin"

    def __post_init__(self) -> None:
        _check_fields(self)
        for what, path in (("python", self.python), ("cni_bin_dir", self.cni_bin_dir), ("src_dir", self.src_dir),
                           ("unit_dir", self.unit_dir), ("daemon_dir", self.daemon_dir)):
            if not validate.is_shell_safe_absolute_path(path):
                raise ValueError(f"{what} {path!r} must be an absolute path without spaces or shell characters")
        if self.python_package is not None and not validate.is_package_name(self.python_package):
            raise ValueError(f"python_package {self.python_package!r} is not a package name")

    def commands(self, zip_path: str, start: bool = True) -> list[str]:
        """Shell commands that unpack ``zip_path`` and install from it (the S3 download comes before); with
        ``start`` (and ``start_ipamd``), then enable and start the daemon."""
        q = shlex.quote
        cmds = []
        if self.python_package:
            cmds.append(f"[ -x {q(self.python)} ] || dnf install -y -q {q(self.python_package)}")
        src = q(self.src_dir)
        cmds += [
            f"rm -rf {src} && mkdir -p {src}",
            # python's own zipfile: AL2023's minimal images may lack unzip.
            f"{q(self.python)} -m zipfile -e {q(zip_path)} {src}",
            f"mkdir -p {q(self.cni_bin_dir)}",
            f"(cd {src} && {q(self.python)} -m node_runtime.install --dest {q(self.cni_bin_dir)} "
            f"--python {q(self.python)} --unit-dir {q(self.unit_dir)} --daemon-dir {q(self.daemon_dir)})",
        ]
        if start and self.start_ipamd:
            cmds += ["systemctl daemon-reload", f"systemctl enable --now {IPAMD_UNIT}"]
        return cmds


def _write_file_command(path: str, content: str, mode: str) -> str:
    marker = "EKSNET_EOF"
    if marker in content:
        raise ValueError("file content contains the heredoc marker")
    return f"mkdir -p {shlex.quote(str(Path(path).parent))}\ncat > {shlex.quote(path)} <<'{marker}'\n{content}{marker}\nchmod {mode} {shlex.quote(path)}"


class MultusNodeBootstrap(Construct):
    """Adds the Multus node setup to node user data: the node config, the node runtime, the node units, then
    the ENI setup started (kubelet waits for it through its drop-in).

    ``interfaces`` [MultusInterfaces()]; ``runtime`` [NodeRuntimeInstall()]: the node setup is part of the node
    runtime, so it is always shipped. Attributes: ``interfaces``, ``runtime``, ``runtime_asset``
    (``NodeRuntimeAsset``), ``node_config`` (the dict written to ``/etc/eksnet/multus.json``), ``commands``
    (the shell lines added).

    Use ``add_to(user_data, role)`` with a node group's shell ``ec2.UserData`` (e.g.
    ``EksCluster.node_user_data[name]``) and its node role (granted read on the asset), or
    ``multipart(role)`` for a launch template of your own: a MIME multipart document with one shell
    part, which AL2023's nodeadm accepts next to its ``application/node.eks.aws`` part.
    """

    def __init__(
        self, scope: Construct, id: str, *, interfaces: MultusInterfaces | None = None,
        runtime: NodeRuntimeInstall = NodeRuntimeInstall(),
    ) -> None:
        if runtime is None:
            raise MultusTypeError("MultusNodeBootstrap.runtime must be NodeRuntimeInstall, got None (NoneType): the "
                                  "node setup that names and configures the Multus ENIs ships inside the node runtime")
        typecheck.check_call("MultusNodeBootstrap", MultusNodeBootstrap.__init__, locals(), error=MultusTypeError)
        super().__init__(scope, id)
        self.interfaces = interfaces or MultusInterfaces()
        self.runtime = runtime
        self.runtime_asset = NodeRuntimeAsset(self, "NodeRuntime")
        self.node_config = self.interfaces.node_config()
        self.commands: list[str] = []

    def add_to(self, user_data: ec2.UserData, role: iam.IGrantable) -> list[str]:
        """Append the setup to ``user_data`` (a shell ``UserData``) and let ``role`` read the asset object.
        Returns the shell lines added (the S3 download line aws-cdk-lib writes sits after the first)."""
        typecheck.check_call("MultusNodeBootstrap.add_to", MultusNodeBootstrap.add_to, locals(), error=MultusTypeError)
        q = shlex.quote
        cmds = [_write_file_command(NODE_CONFIG, json.dumps(self.node_config, indent=2) + "\n", "0644")]
        user_data.add_commands(*cmds)
        asset = self.runtime_asset.asset
        # Only this object, not the whole assets bucket (what Asset.grant_read would give).
        iam.Grant.add_to_principal(grantee=role, actions=["s3:GetObject"],
                                   resource_arns=[asset.bucket.arn_for_objects(asset.s3_object_key)])
        zip_path = user_data.add_s3_download_command(
            bucket=asset.bucket, bucket_key=asset.s3_object_key, local_file="/tmp/eksnet-node-runtime.zip")
        rt = self.runtime
        steps = rt.commands(zip_path, start=False) + [
            f"(cd {q(rt.src_dir)} && {q(rt.python)} -m node_runtime.node.units --python {q(rt.python)} "
            f"--src {q(rt.src_dir)} --unit-dir {q(rt.unit_dir)} --config {NODE_CONFIG})",
            "systemctl daemon-reload",
        ]
        if rt.start_ipamd:
            steps.append(f"systemctl enable --now {IPAMD_UNIT}")
        steps += [
            f"systemctl enable {SCRIPT_UNIT}",
            "udevadm control --reload || true",
            # Not waited for here: kubelet's drop-in orders kubelet after it and gates on the readiness check.
            f"systemctl start --no-block {SCRIPT_UNIT}",
        ]
        user_data.add_commands(*steps)
        cmds += steps
        self.commands += cmds
        return cmds

    def multipart(self, role: iam.IGrantable) -> ec2.MultipartUserData:
        """A MIME multipart user data with the setup as its shell part, for launch templates of your own."""
        shell = ec2.UserData.for_linux()
        self.add_to(shell, role)
        multipart = ec2.MultipartUserData()
        multipart.add_user_data_part(shell, ec2.MultipartBody.SHELL_SCRIPT, False)
        return multipart
