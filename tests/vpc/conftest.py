"""Fixtures of the VPC tests: build an ``EksVpc`` in a fresh app and read its synthesized template.

Each synth costs seconds (jsii, aws-cdk-lib's template validation, cdk-nag), so test modules build
each variant once in a module-scoped fixture; validation tests only construct.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eksnet.vpc import EksVpc
from vpc_testkit import synth_vpc


@pytest.fixture(scope="module")
def build_vpc(tmp_path_factory) -> Callable[..., tuple[dict, EksVpc]]:
    return lambda **props: synth_vpc(str(tmp_path_factory.mktemp("cdk")), **props)
