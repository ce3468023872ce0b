"""The default app deploys in every region the README supports, and fits an account's default quotas there.

Each supported region's app is synthesized once per test run (whichever xdist worker asks first; the others
wait on a per-region lock), with cdk-nag on and aws-cdk-lib's built-in template check off (cfn-lint, run here
in that region, is the stricter one). Then every template is linted in its stack's region.
"""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
from pathlib import Path

import pytest
from eksnet.environment import REGION_ZONES, SUPPORTED_REGIONS
from support.cfn import resources
from support.gates import cfn_lint, stack_region
from support.paths import ROOT, VENV_BIN, tool_env

from apps.context import DEFAULT_REGION

# Default quotas per region (VPC: 5 VPCs, 5 Elastic IPs), less the default VPC most accounts keep.
MAX_VPCS = 4
MAX_EIPS = 5


def _synth_region(shared: Path, region: str, context: dict | None = None) -> Path:
    tag = region + "".join(f"-{k}={v}" for k, v in sorted((context or {}).items())).replace(":", "_")
    out = shared / f"app-{tag}"
    done = shared / f"app-{tag}.rc"
    with open(shared / f"app-{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            env = tool_env() | {
                "CDK_OUTDIR": str(out),
                # path metadata as under the CDK CLI: cfn-lint reads it (e.g. zones named on purpose in CDK templates)
                "CDK_CONTEXT_JSON": json.dumps({"eksnet:region": region, "aws:cdk:enable-path-metadata": True,
                                                **(context or {})}),
                "CDK_VALIDATION": "false",
            }
            proc = subprocess.run([str(VENV_BIN / "python"), "-m", "apps.main"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=600)
            (shared / f"app-{tag}.log").write_text(proc.stdout + proc.stderr)
            done.write_text(str(proc.returncode))
    if done.read_text() != "0":
        pytest.fail(f"the default app failed to synthesize in {region}:\n"
                    + (shared / f"app-{tag}.log").read_text()[-4000:])
    return out


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory, worker_id) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


def _templates(out: Path) -> dict[str, Path]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {name: out / a["properties"]["templateFile"] for name, a in manifest["artifacts"].items()
            if a["type"] == "aws:cloudformation:stack"}


def _count(paths: dict[str, Path], type_: str) -> int:
    return sum(len(resources(json.loads(p.read_text()), type_)) for p in paths.values())


def test_the_readme_names_the_supported_regions():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Regions"):]
    section = section[: section.find("\n## ", 4)]
    assert set(re.findall(r"`([a-z]{2}-[a-z]+-\d)`", section)) >= set(SUPPORTED_REGIONS)
    assert DEFAULT_REGION in SUPPORTED_REGIONS and set(SUPPORTED_REGIONS) <= set(REGION_ZONES)


@pytest.mark.parametrize("region", SUPPORTED_REGIONS)
def test_the_default_app_passes_cfn_lint_in_each_supported_region(shared_dir, region):
    templates = _templates(_synth_region(shared_dir, region))
    assert {stack_region(p) for p in templates.values()} == {region}
    findings = cfn_lint(list(templates.values()))
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("region", SUPPORTED_REGIONS)
def test_the_default_app_fits_default_quotas_with_room_for_the_default_vpc(shared_dir, region):
    templates = _templates(_synth_region(shared_dir, region))
    assert _count(templates, "AWS::EC2::VPC") <= MAX_VPCS
    # One NAT gateway (one Elastic IP) per VPC, as eksctl does by default.
    assert _count(templates, "AWS::EC2::EIP") == _count(templates, "AWS::EC2::NatGateway") == \
        _count(templates, "AWS::EC2::VPC") <= MAX_EIPS


def test_per_zone_nat_gateways_are_a_choice_by_context(shared_dir):
    templates = _templates(_synth_region(shared_dir, DEFAULT_REGION, {"eksnet:natGateways": "per-az"}))
    zones = len(REGION_ZONES[DEFAULT_REGION])
    assert _count(templates, "AWS::EC2::NatGateway") == zones * _count(templates, "AWS::EC2::VPC")


def test_the_region_picks_the_cidr_reservation_form(shared_dir):
    # us-east-1's CloudFormation has AWS::EC2::SubnetCidrReservation; eu-central-1's does not.
    native = _templates(_synth_region(shared_dir, "us-east-1"))
    custom = _templates(_synth_region(shared_dir, "eu-central-1"))
    assert _count(native, "AWS::EC2::SubnetCidrReservation") and not _count(native, "Custom::SubnetCidrReservation")
    assert _count(custom, "Custom::SubnetCidrReservation") and not _count(custom, "AWS::EC2::SubnetCidrReservation")


def test_no_stack_names_a_zone_outside_its_region(shared_dir):
    for region in SUPPORTED_REGIONS:
        for path in _templates(_synth_region(shared_dir, region)).values():
            zones = set(re.findall(r'"([a-z]{2}-[a-z]+-\d[a-z])"', path.read_text()))
            assert all(z.startswith(region) for z in zones), (region, path.name, zones)


