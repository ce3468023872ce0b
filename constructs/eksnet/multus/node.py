"""Node bootstrap for Multus: the Multus ENIs made usable, and the node runtime shipped and started.

On an AL2023 EKS node, cloud-init runs user-data shell parts before ``nodeadm-run.service`` starts
kubelet (that unit is ordered ``After=cloud-final.service``), so whatever this module adds is in
place before the first pod is scheduled. Two pieces:

* ``MultusInterfaces`` renders ``eksnet-multus-interfaces``, a shell script (also run at every boot
  by a systemd unit) that does what seed 003 does by hand (``ip link set eth1 name multus``) for every
  Multus ENI: it waits for the ENI at each device index (the lifecycle-hook Lambda attaches them while
  the node boots), finds its MAC through IMDSv2, renames the link ``multus<device index>``, tells
  systemd-networkd to leave it alone (no DHCP, no policy routes on it), sets ``rp_filter`` and brings
  it up. With ``ipam_pools`` it also writes the ``eksnet-ipamd`` config: one pool per ENI,
  ``multus<device index>``, from the prefixes delegated to that ENI, so one NAD with
  ``EksnetIpam(pool="multus1")`` serves every node.
* ``NodeRuntimeAsset`` packages ``node_runtime`` (and pyroute2, which the node's Python lacks) as an
  S3 asset; ``MultusNodeBootstrap`` adds to a node group's shell user data the commands that fetch
  it, install the CNI executables into ``/opt/cni/bin`` with the same installer ``make cni-bin`` uses
  (``python -m node_runtime.install``), install the daemon's systemd unit, and start it.

The script text is pure Python (``MultusInterfaces.script()``): tests run it in a network namespace
against a fake IMDS without synthesizing anything.
"""

from __future__ import annotations

import enum
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets

from constructs import Construct

SCRIPT_PATH = "/usr/local/sbin/eksnet-multus-interfaces"
SCRIPT_UNIT = "eksnet-multus-interfaces.service"
IPAMD_UNIT = "eksnet-ipamd.service"
IPAMD_CONFIG = "/etc/eksnet/ipamd.json"
CNI_BIN_DIR = "/opt/cni/bin"
RUNTIME_SRC_DIR = "/opt/eksnet/src"
ASSET_EXCLUDE = ["**/__pycache__", "**/__pycache__/**", "**/*.pyc", "**/*.pyo"]



class RpFilter(enum.Enum):
    """Reverse-path filtering on a Multus interface. The kernel uses max(all, interface): LOOSE is in force
    whatever ``all`` says; OFF only where ``net.ipv4.conf.all.rp_filter`` is 0 too."""

    OFF = 0
    STRICT = 1
    LOOSE = 2


@dataclass(frozen=True)
class MultusInterfaces:
    """The Multus ENIs a node expects, by EC2 device index (the Lambda attaches them at 1..n).

    * ``device_indexes`` [(1,)]: each is named ``<name_prefix><index>`` (``multus1``, ``multus2``...).
    * ``rp_filter`` [LOOSE]: the seed's asymmetric paths (VPC CNI on eth0, Multus on multusN) need it
      loose or off.
    * ``wait_seconds`` [300]: how long to wait for the ENIs to be attached before giving up on them.
    * ``ipam_pools`` [True]: write ``/etc/eksnet/ipamd.json`` with one pool per ENI from its
      delegated IPv4 and IPv6 prefixes (IMDS ``ipv4-prefix`` / ``ipv6-prefix``).
    """

    device_indexes: tuple[int, ...] = (1,)
    name_prefix: str = "multus"
    rp_filter: RpFilter = RpFilter.LOOSE
    wait_seconds: int = 300
    ipam_pools: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "device_indexes", tuple(self.device_indexes))
        if not self.device_indexes:
            raise ValueError("MultusInterfaces needs at least one device index (the Multus ENIs attach at 1..n)")
        if len(set(self.device_indexes)) != len(self.device_indexes):
            raise ValueError(f"device_indexes lists an index twice: {self.device_indexes}")
        for i in self.device_indexes:
            if not isinstance(i, int) or not 1 <= i <= 31:
                raise ValueError(f"device index {i!r}: Multus ENIs attach at 1..31 (0 is the primary ENI, eth0)")
        if not re.match(r"^[a-z][a-z0-9]{0,12}$", self.name_prefix):
            raise ValueError(
                f"name_prefix {self.name_prefix!r}: 1-13 lower-case letters or digits, starting with a letter "
                "(the interface name with its index must fit the kernel's 15 characters)"
            )
        if self.name_prefix in ("eth", "ens", "enp", "lo"):
            raise ValueError(f"name_prefix {self.name_prefix!r} collides with the names the kernel and udev give")
        if not isinstance(self.rp_filter, RpFilter):
            raise ValueError("rp_filter must be an RpFilter (OFF, STRICT or LOOSE)")
        if not 0 <= self.wait_seconds <= 3600:
            raise ValueError(f"wait_seconds {self.wait_seconds} must be between 0 and 3600")

    @property
    def names(self) -> dict[int, str]:
        """Device index -> interface name on the node (what a NAD's ``master`` names)."""
        return {i: f"{self.name_prefix}{i}" for i in self.device_indexes}

    def script(self) -> str:
        """The bash script ``eksnet-multus-interfaces``. ``EKSNET_IMDS`` and ``EKSNET_ROOT`` (a prefix for
        every file it writes) exist for tests; on a node they are unset."""
        return _INTERFACES_SCRIPT.format(
            indexes=" ".join(str(i) for i in self.device_indexes),
            prefix=self.name_prefix,
            rp_filter=self.rp_filter.value,
            wait=self.wait_seconds,
            pools="1" if self.ipam_pools else "0",
            ipamd_config=IPAMD_CONFIG,
        )

    def unit(self) -> str:
        """A oneshot unit that re-applies the names at every boot, before kubelet (renames do not persist)."""
        return (
            "[Unit]\n"
            "Description=eksnet: name and configure the Multus ENIs\n"
            "After=network.target\n"
            f"Before=kubelet.service {IPAMD_UNIT}\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart={SCRIPT_PATH}\n"
            "RemainAfterExit=yes\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        )


_INTERFACES_SCRIPT = r"""#!/bin/bash
# eksnet-multus-interfaces: name each Multus ENI multus<device index>, keep systemd-networkd off it,
# set rp_filter, bring it up, and (optionally) describe its delegated prefixes to eksnet-ipamd.
# Written by eksnet's node bootstrap; safe to run again (it is, at every boot).
set -uo pipefail
IMDS="${{EKSNET_IMDS:-http://169.254.169.254}}"
ROOT="${{EKSNET_ROOT:-}}"
INDEXES="{indexes}"
PREFIX="{prefix}"
RP_FILTER={rp_filter}
WAIT={wait}
POOLS={pools}
IPAMD_CONFIG="$ROOT{ipamd_config}"

log() {{ echo "eksnet-multus-interfaces: $*" >&2; }}
TOKEN=""
imds() {{
  if [ -z "$TOKEN" ]; then
    TOKEN=$(curl -sf -m 5 -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 600") || return 1
  fi
  curl -sf -m 5 -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/$1"
}}
mac_of_device() {{
  local mac
  for mac in $(imds network/interfaces/macs/); do
    mac=${{mac%/}}
    if [ "$(imds "network/interfaces/macs/$mac/device-number")" = "$1" ]; then echo "$mac"; return 0; fi
  done
  return 1
}}
link_of_mac() {{
  local dev
  for dev in /sys/class/net/*; do
    if [ "$(cat "$dev/address" 2>/dev/null)" = "$1" ]; then basename "$dev"; return 0; fi
  done
  return 1
}}
configure() {{
  local index=$1 mac=$2 name="$PREFIX$1" link
  link=$(link_of_mac "$mac") || return 1
  mkdir -p "$ROOT/etc/systemd/network"
  printf '[Match]\nMACAddress=%s\n\n[Link]\nUnmanaged=yes\n' "$mac" > "$ROOT/etc/systemd/network/05-eksnet-$name.network"
  if [ "$link" != "$name" ]; then
    ip link set dev "$link" down && ip link set dev "$link" name "$name" || return 1
  fi
  echo "$RP_FILTER" > "/proc/sys/net/ipv4/conf/$name/rp_filter" || return 1
  ip link set dev "$name" up || return 1
  log "device $index ($mac): $link -> $name, up, rp_filter=$RP_FILTER"
}}
ranges_json() {{
  local cidr out="" re='^[0-9a-fA-F:./]+$'
  for cidr in $1; do
    [[ $cidr =~ $re ]] || continue
    out="$out${{out:+,}}{{\"subnet\":\"$cidr\"}}"
  done
  [ -n "$out" ] && echo "[$out]"
}}
pool_json() {{
  local mac=$1 v4 v6 sets=""
  v4=$(ranges_json "$(imds "network/interfaces/macs/$mac/ipv4-prefix" 2>/dev/null)")
  v6=$(ranges_json "$(imds "network/interfaces/macs/$mac/ipv6-prefix" 2>/dev/null)")
  for s in "$v4" "$v6"; do [ -n "$s" ] && sets="$sets${{sets:+,}}$s"; done
  [ -n "$sets" ] && echo "{{\"ranges\":[$sets]}}"
}}

failed=0
pools=""
deadline=$((SECONDS + WAIT))
for index in $INDEXES; do
  while :; do
    mac=$(mac_of_device "$index") && configure "$index" "$mac" && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "device $index: no Multus ENI after ${{WAIT}}s; pods on its networks will not start here"
      failed=1; mac=""; break
    fi
    sleep 2
  done
  if [ "$POOLS" = 1 ] && [ -n "$mac" ]; then
    pool=$(pool_json "$mac") && pools="$pools${{pools:+,}}\"$PREFIX$index\":$pool"
  fi
done
if [ "$POOLS" = 1 ]; then
  mkdir -p "$(dirname "$IPAMD_CONFIG")"
  printf '{{"pools":{{%s}}}}\n' "$pools" > "$IPAMD_CONFIG.tmp" && mv "$IPAMD_CONFIG.tmp" "$IPAMD_CONFIG"
fi
command -v networkctl >/dev/null 2>&1 && [ -z "$ROOT" ] && networkctl reload || true
exit $failed
"""


def _staged_runtime() -> Path:
    """A directory holding ``node_runtime`` and ``pyroute2`` (the node's Python has no pyroute2), made by
    the installer's own ``bundle``, which leaves ``__pycache__`` and ``*.pyc`` out so the asset hash
    depends on the sources only."""
    from node_runtime.install import bundle

    return bundle(tempfile.mkdtemp(prefix="eksnet-node-runtime-"))


class NodeRuntimeAsset(Construct):
    """``node_runtime`` plus pyroute2 as one S3 asset (a zip). Attribute: ``asset``."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stage = _staged_runtime()
        try:
            self.asset = s3_assets.Asset(self, "Asset", path=str(stage), exclude=ASSET_EXCLUDE)
        finally:
            # The asset is fingerprinted and copied into the cloud assembly when made.
            shutil.rmtree(stage, ignore_errors=True)


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
        for what, path in (("python", self.python), ("cni_bin_dir", self.cni_bin_dir), ("src_dir", self.src_dir),
                           ("unit_dir", self.unit_dir), ("daemon_dir", self.daemon_dir)):
            if not path.startswith("/") or not re.match(r"^[A-Za-z0-9_./-]+$", path):
                raise ValueError(f"{what} {path!r} must be an absolute path without spaces or shell characters")
        if self.python_package is not None and not re.match(r"^[A-Za-z0-9_.+-]+$", self.python_package):
            raise ValueError(f"python_package {self.python_package!r} is not a package name")

    def commands(self, zip_path: str) -> list[str]:
        """Shell commands that unpack ``zip_path`` and install from it (the S3 download comes before)."""
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
        if self.start_ipamd:
            cmds += ["systemctl daemon-reload", f"systemctl enable --now {IPAMD_UNIT}"]
        return cmds


def _write_file_command(path: str, content: str, mode: str) -> str:
    marker = "EKSNET_EOF"
    if marker in content:
        raise ValueError("file content contains the heredoc marker")
    return f"mkdir -p {shlex.quote(str(Path(path).parent))}\ncat > {shlex.quote(path)} <<'{marker}'\n{content}{marker}\nchmod {mode} {shlex.quote(path)}"


class MultusNodeBootstrap(Construct):
    """Adds the Multus node setup to node user data: interfaces first, then the node runtime.

    ``interfaces`` [MultusInterfaces()]; ``runtime`` [NodeRuntimeInstall()], or None to ship no node
    runtime (NADs then use only the reference plugins). Attributes: ``interfaces``, ``runtime``,
    ``runtime_asset`` (``NodeRuntimeAsset`` or None), ``commands`` (the shell lines added).

    Use ``add_to(user_data, role)`` with a node group's shell ``ec2.UserData`` (e.g.
    ``EksCluster.node_user_data[name]``) and its node role (granted read on the asset), or
    ``multipart(role)`` for a launch template of your own: a MIME multipart document with one shell
    part, which AL2023's nodeadm accepts next to its ``application/node.eks.aws`` part.
    """

    def __init__(
        self, scope: Construct, id: str, *, interfaces: MultusInterfaces | None = None,
        runtime: NodeRuntimeInstall | None = NodeRuntimeInstall(),
    ) -> None:
        super().__init__(scope, id)
        self.interfaces = interfaces or MultusInterfaces()
        self.runtime = runtime
        self.runtime_asset = NodeRuntimeAsset(self, "NodeRuntime") if runtime is not None else None
        self.commands: list[str] = []

    def add_to(self, user_data: ec2.UserData, role: iam.IGrantable) -> list[str]:
        """Append the setup to ``user_data`` (a shell ``UserData``) and let ``role`` read the asset object.
        Returns the shell lines added (the S3 download lines aws-cdk-lib writes sit between them)."""
        cmds = [
            _write_file_command(SCRIPT_PATH, self.interfaces.script(), "0755"),
            _write_file_command(f"/etc/systemd/system/{SCRIPT_UNIT}", self.interfaces.unit(), "0644"),
            "systemctl daemon-reload",
            f"systemctl enable {SCRIPT_UNIT}",
            f"{SCRIPT_PATH} || echo 'eksnet: some Multus interfaces are not configured' >&2",
        ]
        user_data.add_commands(*cmds)
        if self.runtime is not None and self.runtime_asset is not None:
            asset = self.runtime_asset.asset
            # Only this object, not the whole assets bucket (what Asset.grant_read would give).
            iam.Grant.add_to_principal(grantee=role, actions=["s3:GetObject"],
                                       resource_arns=[asset.bucket.arn_for_objects(asset.s3_object_key)])
            zip_path = user_data.add_s3_download_command(
                bucket=asset.bucket, bucket_key=asset.s3_object_key, local_file="/tmp/eksnet-node-runtime.zip")
            install = self.runtime.commands(zip_path)
            user_data.add_commands(*install)
            cmds += install
        self.commands += cmds
        return cmds

    def multipart(self, role: iam.IGrantable) -> ec2.MultipartUserData:
        """A MIME multipart user data with the setup as its shell part, for launch templates of your own."""
        shell = ec2.UserData.for_linux()
        self.add_to(shell, role)
        multipart = ec2.MultipartUserData()
        multipart.add_user_data_part(shell, ec2.MultipartBody.SHELL_SCRIPT, False)
        return multipart
