"""Shipping the node runtime and the Multus interface setup onto nodes: the asset, the user data, the IAM, and
the install commands run for real against the asset with a bare interpreter (like an AL2023 node's)."""

from __future__ import annotations

import compileall
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from eksnet.environment import EksnetStack
from eksnet.multus.node import (
    NODE_CONFIG,
    SCRIPT_UNIT,
    MultusInterfaces,
    MultusNodeBootstrap,
    NodeRuntimeAsset,
    NodeRuntimeInstall,
)
from support import cfn
from support.envs import deploy_env

BARE_PYTHON = "/usr/bin/python3"  # Debian's 3.11 without pyroute2: stands for the node's interpreter


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One stack: a role, a launch template whose user data is the bootstrap's MIME multipart document."""
    out = tmp_path_factory.mktemp("cdkout")
    app = cdk.App(outdir=str(out))
    stack = EksnetStack(app, "BootstrapTest", deploy_env=deploy_env())
    role = iam.Role(stack, "NodeRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    bootstrap = MultusNodeBootstrap(stack, "Bootstrap", interfaces=MultusInterfaces(device_indexes=(1, 2)))
    shell = ec2.UserData.for_linux()
    bootstrap.add_to(shell, role)
    ec2.LaunchTemplate(stack, "Lt", user_data=bootstrap_multipart(stack, role))
    rendered = shell.render()
    app.synth()
    template = json.loads((out / "BootstrapTest.template.json").read_text())
    asset = bootstrap.runtime_asset.asset
    zips = list(out.glob(f"asset.{asset.asset_hash}*"))
    return {"template": template, "shell": rendered, "asset": asset, "zip": zips[0] if zips else None,
            "stack": stack, "out": out}


def bootstrap_multipart(stack, role):
    other = MultusNodeBootstrap(stack, "Standalone")
    return other.multipart(role)


def runtime_zip(synth, tmp_path: Path) -> Path:
    """The asset as the node downloads it: the CDK CLI zips a directory asset when it publishes it."""
    staged, archive = synth["zip"], tmp_path / "runtime.zip"
    if staged.is_dir():
        shutil.make_archive(str(archive.with_suffix("")), "zip", staged)
    else:
        shutil.copy(staged, archive)
    return archive


def asset_members(synth) -> list[str]:
    staged = synth["zip"]
    assert staged is not None, "the node runtime asset was not written to the cloud assembly"
    if staged.is_dir():
        return [str(p.relative_to(staged)) for p in staged.rglob("*")]
    return zipfile.ZipFile(staged).namelist()


def test_asset_holds_the_node_runtime_and_pyroute2(synth):
    members = asset_members(synth)
    for needed in ("node_runtime/install.py", "node_runtime/data/eksnet-ipamd.service", "pyroute2/__init__.py"):
        assert needed in members


def test_asset_has_no_bytecode(synth):
    assert not [m for m in asset_members(synth) if "__pycache__" in m or m.endswith((".pyc", ".pyo"))]


def test_asset_hash_ignores_bytecode_written_by_imports(synth):
    # What any import of the runtime does (unless PYTHONDONTWRITEBYTECODE): bytecode beside the sources.
    source = Path(__file__).resolve().parents[2] / "node_runtime" / "install.py"
    compileall.compile_file(str(source), force=True, quiet=1)
    assert list((source.parent / "__pycache__").glob("install.*.pyc"))
    again = NodeRuntimeAsset(EksnetStack(cdk.App(), "Again", deploy_env=deploy_env()), "Runtime")
    assert again.asset.asset_hash == synth["asset"].asset_hash


def test_config_then_runtime_then_units_then_daemon_then_interfaces(synth):
    shell = synth["shell"]
    order = [shell.index(s) for s in (f"cat > {NODE_CONFIG}", "aws s3 cp", "-m node_runtime.install",
                                      "-m node_runtime.node.units", "systemctl enable --now eksnet-ipamd.service",
                                      f"systemctl enable {SCRIPT_UNIT}", f"systemctl start --no-block {SCRIPT_UNIT}")]
    assert order == sorted(order)


def test_aws_and_package_manager_steps_are_lines_of_their_own(synth):
    # make demo names and replaces exactly these lines
    lines = synth["shell"].splitlines()
    for needle in ("aws s3 cp", "dnf install"):
        (line,) = [line for line in lines if needle in line]
        assert "&&" not in line.split(needle)[0], line


def test_cni_executables_go_to_opt_cni_bin_with_a_real_interpreter(synth):
    assert ("-m node_runtime.install --dest /opt/cni/bin --python /usr/bin/python3.11 "
            "--unit-dir /etc/systemd/system") in synth["shell"]
    assert "[ -x /usr/bin/python3.11 ] || dnf install -y -q python3.11" in synth["shell"]


def test_node_config_lists_every_expected_eni(synth):
    shell = synth["shell"]
    config = json.loads(shell.split(f"cat > {NODE_CONFIG} <<'EKSNET_EOF'\n")[1].split("EKSNET_EOF")[0])
    assert config == MultusInterfaces(device_indexes=(1, 2)).node_config()
    assert [i["deviceIndex"] for i in config["interfaces"]] == [1, 2]


def test_node_role_reads_only_the_runtime_object(synth):
    statements = [s for _, p in cfn.props(synth["template"], "AWS::IAM::Policy")
                  for s in p["PolicyDocument"]["Statement"]]
    assert len(statements) == 1
    assert statements[0]["Action"] == "s3:GetObject"
    resource = json.dumps(statements[0]["Resource"])
    assert synth["asset"].asset_hash in resource and "/*" not in resource


def test_launch_template_user_data_is_mime_multipart_with_a_shell_part(synth):
    (_, lt), = cfn.props(synth["template"], "AWS::EC2::LaunchTemplate")
    text = json.dumps(lt["LaunchTemplateData"]["UserData"])
    assert "multipart/mixed" in text and "text/x-shellscript" in text


def test_the_node_setup_needs_the_runtime():
    with pytest.raises(ValueError, match="ships inside the node runtime"):
        MultusNodeBootstrap(EksnetStack(cdk.App(), "NoRuntime", deploy_env=deploy_env()), "B", runtime=None)


def test_install_commands_install_from_the_asset_with_a_bare_interpreter(synth, tmp_path):
    if not Path(BARE_PYTHON).exists():
        pytest.fail(f"{BARE_PYTHON} is missing (TESTING.md: Debian's python3 3.11 is on these machines)")
    archive = runtime_zip(synth, tmp_path)
    install = NodeRuntimeInstall(python=BARE_PYTHON, python_package=None, start_ipamd=False,
                                 cni_bin_dir=str(tmp_path / "bin"), src_dir=str(tmp_path / "src"),
                                 unit_dir=str(tmp_path / "units"), daemon_dir=str(tmp_path / "sbin"))
    proc = subprocess.run(["bash", "-euc", "\n".join(install.commands(str(archive)))],
                          capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    for name in ("eksnet-ipam", "eksnet-ipvlan", "eksnet-macvlan"):  # native forwarders when built, else scripts
        path = tmp_path / "bin" / name
        assert os.access(path, os.X_OK)
        assert path.read_bytes()[:4] == b"\x7fELF" or path.read_text().startswith(f"#!{BARE_PYTHON}")
    assert (tmp_path / "sbin" / "eksnet-ipamd").read_text().startswith(f"#!{BARE_PYTHON}")
    assert not (tmp_path / "bin" / "eksnet-ipamd").exists()
    unit = (tmp_path / "units" / "eksnet-ipamd.service").read_text()
    assert f"ExecStart={tmp_path / 'sbin'}/eksnet-ipamd" in unit


def test_installed_ipam_plugin_answers_version(synth, tmp_path):
    archive = runtime_zip(synth, tmp_path)
    install = NodeRuntimeInstall(python=BARE_PYTHON, python_package=None, start_ipamd=False,
                                 cni_bin_dir=str(tmp_path / "bin"), src_dir=str(tmp_path / "src"),
                                 unit_dir=str(tmp_path / "units"), daemon_dir=str(tmp_path / "sbin"))
    subprocess.run(["bash", "-euc", "\n".join(install.commands(str(archive)))], check=True, capture_output=True)
    env = {"CNI_COMMAND": "VERSION", "EKSNET_IPAMD_SOCKET": str(tmp_path / "no-daemon.sock"), "PATH": "/usr/bin"}
    proc = subprocess.run([str(tmp_path / "bin" / "eksnet-ipam")], input='{"cniVersion":"1.0.0"}', env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1.0.0" in json.loads(proc.stdout)["supportedVersions"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"device_indexes": ()}, "at least one device index"),
    ({"device_indexes": (0,)}, "0 is the primary ENI"),
    ({"device_indexes": (1, 1)}, "twice"),
    ({"name_prefix": "eth"}, "collides"),
    ({"name_prefix": "Multus"}, "lower-case"),
    ({"name_prefix": "a" * 14}, "15 characters"),
    ({"wait_seconds": -1}, "between 0 and 3600"),
])
def test_interfaces_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultusInterfaces(**kwargs)


def test_interface_names_follow_the_device_index():
    assert MultusInterfaces(device_indexes=(1, 2)).names == {1: "multus1", 2: "multus2"}


@pytest.mark.parametrize("python", ["python3", "/usr/bin/python3; rm -rf /"])
def test_install_refuses_a_relative_or_unsafe_interpreter(python):
    with pytest.raises(ValueError, match="absolute path"):
        NodeRuntimeInstall(python=python)


def test_a_runtime_path_with_a_trailing_newline_is_refused():
    with pytest.raises(ValueError, match="must be an absolute path"):
        NodeRuntimeInstall(python="/usr/bin/python3.11\n")
