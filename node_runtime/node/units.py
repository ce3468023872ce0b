"""The systemd units and udev rule that run the node setup at every boot and whenever an ENI appears, and
gate kubelet on the readiness check. ``python -m node_runtime.node.units --python ... --src ...`` writes them
(under ``EKSNET_ROOT`` when set); the node user data runs it after installing the runtime.

* ``eksnet-multus-interfaces.service``: the setup at boot, after ``eksnet-ipamd`` (it reloads the daemon's
  pools) and before kubelet. Renames do not survive a reboot: it runs on every boot.
* ``eksnet-multus-hotplug.service``: the same setup, started by udev for each network device added (an
  ENI attached after boot, e.g. when the lifecycle Lambda was late or an instance was reconciled).
* ``90-eksnet-multus.rules``: udev asks systemd for the hotplug unit on every ENA/ixgbevf link added.
* ``kubelet.service.d/90-eksnet-multus.conf``: kubelet starts after both, and only when
  ``node_runtime.node.ready`` passes; when it fails, kubelet fails and systemd tries again, so a node whose
  ENIs never come never registers and never takes pods.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .config import DEFAULT_CONFIG, rooted

SETUP_UNIT = "eksnet-multus-interfaces.service"
HOTPLUG_UNIT = "eksnet-multus-hotplug.service"
IPAMD_UNIT = "eksnet-ipamd.service"
KUBELET_UNIT = "kubelet.service"
KUBELET_DROPIN = "90-eksnet-multus.conf"
UDEV_RULE = "90-eksnet-multus.rules"
ENV = "/usr/bin/env"

#: How long the readiness check waits inside one kubelet start, and kubelet's start timeout around it.
READY_WAIT_SECONDS = 120
KUBELET_START_TIMEOUT_SECONDS = 180


def _command(python: str, src: str, module: str, *args: str) -> str:
    return " ".join(shlex.quote(a) for a in (ENV, f"PYTHONPATH={src}", python, "-m", module, *args))


def setup_unit(python: str, src: str, config: str = DEFAULT_CONFIG) -> str:
    return (
        "[Unit]\n"
        "Description=eksnet: name and configure the Multus ENIs, describe their prefixes to eksnet-ipamd\n"
        f"After=network.target {IPAMD_UNIT}\n"
        f"Wants={IPAMD_UNIT}\n"
        f"Before={KUBELET_UNIT}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={_command(python, src, 'node_runtime.node.setup', '--config', config)}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def hotplug_unit(python: str, src: str, config: str = DEFAULT_CONFIG) -> str:
    return (
        "[Unit]\n"
        "Description=eksnet: configure Multus ENIs attached after boot (started by udev)\n"
        f"After={IPAMD_UNIT} {SETUP_UNIT}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={_command(python, src, 'node_runtime.node.setup', '--config', config, '--wait', '60')}\n"
    )


def udev_rule() -> str:
    return (
        "# eksnet: an ENI attached to this instance (ENA or ixgbevf) may be a Multus ENI: configure it.\n"
        'ACTION=="add", SUBSYSTEM=="net", DRIVERS=="ena|ixgbevf", TAG+="systemd", '
        f'ENV{{SYSTEMD_WANTS}}+="{HOTPLUG_UNIT}"\n'
    )


def kubelet_dropin(python: str, src: str, config: str = DEFAULT_CONFIG) -> str:
    ready = _command(python, src, "node_runtime.node.ready", "--config", config, "--wait", str(READY_WAIT_SECONDS))
    return (
        "# eksnet: kubelet starts only when this node's Multus ENIs are attached and configured and eksnet-ipamd\n"
        "# serves their pools (node_runtime.node.ready); until then the node does not register and takes no pods.\n"
        "[Unit]\n"
        f"Wants={SETUP_UNIT} {IPAMD_UNIT}\n"
        f"After={SETUP_UNIT} {IPAMD_UNIT}\n"
        "StartLimitIntervalSec=0\n"
        "\n"
        "[Service]\n"
        f"ExecStartPre={ready}\n"
        f"TimeoutStartSec={KUBELET_START_TIMEOUT_SECONDS}\n"
        "Restart=always\n"
        "RestartSec=10\n"
    )


def files(python: str, src: str, unit_dir: str, udev_dir: str, config: str = DEFAULT_CONFIG) -> dict[str, str]:
    """Path -> content of every file this module installs."""
    return {
        f"{unit_dir}/{SETUP_UNIT}": setup_unit(python, src, config),
        f"{unit_dir}/{HOTPLUG_UNIT}": hotplug_unit(python, src, config),
        f"{unit_dir}/{KUBELET_UNIT}.d/{KUBELET_DROPIN}": kubelet_dropin(python, src, config),
        f"{udev_dir}/{UDEV_RULE}": udev_rule(),
    }


def install(python: str, src: str, unit_dir: str, udev_dir: str, config: str = DEFAULT_CONFIG) -> list[str]:
    written = []
    for path, content in files(python, src, unit_dir, udev_dir, config).items():
        target = Path(rooted(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_text(content)
        os.replace(tmp, target)
        written.append(str(target))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node_runtime.node.units", description=__doc__.split("\n")[0])
    p.add_argument("--python", default=sys.executable, help="the interpreter the units run (a real one)")
    p.add_argument("--src", required=True, help="directory holding node_runtime (PYTHONPATH of the units)")
    p.add_argument("--unit-dir", default="/etc/systemd/system")
    p.add_argument("--udev-dir", default="/etc/udev/rules.d")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    args = p.parse_args(argv)
    for path in install(args.python, args.src, args.unit_dir, args.udev_dir, args.config):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
