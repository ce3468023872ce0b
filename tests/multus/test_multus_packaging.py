"""Assets that travel: the eksnet wheel, installed into a fresh virtual environment outside the repository,
synthesizes an app that uses ``MultusNetworking`` from a working directory outside the repository, and the cloud
assembly holds the Multus ENI Lambda's code and the node runtime (both found from the installed package).

Cost: the wheel is built once per session (pip's build isolation, from pip's cache after the first run) and
installed with ``--no-deps``; the dependencies (aws-cdk-lib and friends, hundreds of MB) are the project venv's,
reached through a ``.pth`` line that adds its site-packages AFTER the fresh venv's own, so ``eksnet`` and
``node_runtime`` can only come from the wheel (the project venv has them as an editable install, whose finder a
plain path entry does not load). The test asserts where they were imported from."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from support.paths import ROOT, tool_env

APP = '''
import json, sys
import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
import eksnet, node_runtime
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.multus import MultusInterface, MultusNetworking
from eksnet.vpc import EksVpc

app = cdk.App(outdir="cdk.out")
stack = EksnetStack(app, "Travel", deploy_env=DeployEnv(account="123456789012", region="eu-central-1"))
vpc = EksVpc(stack, "Vpc", cluster_names=["travel"])
cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="travel", ip_family=eks.IpFamily.IP_V4,
                     nodegroups=[NodeGroupSpec("ng", instance_types=("t3.large",))])
net = MultusNetworking(stack, "Multus", vpc=vpc, cluster=cluster, interfaces=[MultusInterface()],
                       install_multus=False)
app.synth()
print(json.dumps({"eksnet": eksnet.__file__, "node_runtime": node_runtime.__file__,
                  "lambda": net.attacher.function.node.path}))
'''


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """Built, installed and synthesized once per test run, even with pytest-xdist: the first worker does it under a
    lock in the directory all workers share, the others read its result."""
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "eksnet-travel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = shared / "eksnet-travel.json"
        if not result.exists():
            result.write_text(json.dumps(_build_install_synth(shared / "eksnet-travel")))
        data = json.loads(result.read_text())
    return {k: Path(v) if k != "where" else v for k, v in data.items()}


def _build_install_synth(base: Path) -> dict:
    base.mkdir()
    assert ROOT not in base.parents
    src = base / "src"  # a copy, so the build writes nothing into the checkout (links kept, as git has them)
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "setup.py"):
        shutil.copy(ROOT / name, src / name)
    # No native builds either: setup.py compiles them into the wheel (node_runtime/native/build.py).
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("constructs", "node_runtime", "lambda"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    wheels = base / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("eksnet-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = base / "app"
    work.mkdir()
    (work / "app.py").write_text(APP)
    env = {k: v for k, v in tool_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    synth = subprocess.run([str(python), "app.py"], cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert synth.returncode == 0, synth.stderr[-3000:]
    return {"wheel": str(wheel), "venv": str(venv), "out": str(work / "cdk.out"),
            "where": json.loads(synth.stdout.splitlines()[-1])}


def assets(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith("asset.") and p.is_dir()]


def test_the_wheel_carries_the_lambda_code_and_the_node_runtime(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for needed in ("eksnet/multus/lambda_multus_eni/index.py", "eksnet/multus/lambda_multus_eni/sweeper.py",
                   "eksnet/multus/data/nad-crd.yaml", "node_runtime/node/setup.py", "node_runtime/node/ready.py",
                   "node_runtime/data/eksnet-ipamd.service", "node_runtime/native/build/x86_64/eksnet-cni",
                   "node_runtime/native/build/aarch64/eksnet-cni"):
        assert needed in names


def test_eksnet_and_node_runtime_come_from_the_fresh_venv(installed):
    for module in ("eksnet", "node_runtime"):
        path = Path(installed["where"][module])
        assert installed["venv"] in path.parents and ROOT not in path.parents


def test_cloud_assembly_holds_the_lambda_asset(installed):
    found = [a for a in assets(installed["out"]) if (a / "index.py").is_file() and (a / "sweeper.py").is_file()]
    assert found, "no asset with the Multus ENI Lambda's index.py and sweeper.py"
    template = json.loads((installed["out"] / "Travel.template.json").read_text())
    code = [r["Properties"]["Code"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
            and r["Properties"].get("Handler") == "index.handler"]
    assert any(found[0].name.removeprefix("asset.") in json.dumps(c) for c in code)


def test_cloud_assembly_holds_the_node_runtime_asset(installed):
    zips = [zipfile.ZipFile(p).namelist() for p in installed["out"].glob("asset.*.zip")]
    found = [names for names in zips if "node_runtime/node/setup.py" in names]
    assert found, "no asset with node_runtime/node/setup.py"
    assert "pyroute2/__init__.py" in found[0]
    assert not [n for n in found[0] if "__pycache__" in n]
