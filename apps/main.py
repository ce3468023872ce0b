"""The default app of ``cdk.json``: every walkthrough scenario as a stack, composed here.

Run by the CDK CLI (``npx cdk synth``) or directly (``python -m apps.main``); both write the cloud assembly to
``cdk.out/``. The context (``apps.context``) is read once; each scenario module builds its stacks from plain
arguments, and the stacks one builds on are passed to it: ``EksnetIpv6Cluster`` gets ``EksnetNetwork`` (its
VPC), ``EksnetCalico`` gets ``EksnetIpv4Cluster`` (its cluster).

``-c eksnet:stacks=EksnetCalico,EksnetMultus`` builds only those stacks and the ones they build on, each as in
the whole app (a scenario module is imported only to build one of its stacks): iterating on one stack does
not pay for all six. A stack that others build on, synthesized
without them, lacks only the exports they would import (synth warns: deploy it from a synth that includes them).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType

import aws_cdk as cdk
from eksnet import nag

from apps import context as app_context

# Builds a stack from the stacks made before it (by name): those it builds on are passed to it, never looked up.
_Build = Callable[[dict[str, cdk.Stack]], cdk.Stack]


def add_stacks(app: cdk.App, settings: app_context.AppSettings) -> dict[str, cdk.Stack]:
    """The stacks ``settings.stacks`` selects (all when empty) and the stacks they build on, by name."""
    env, nat, cluster_name = settings.deploy_env, settings.nat_gateways, settings.cluster_name
    c = app_context
    # name -> (the stacks it builds on, how to build it); in the default app's order, bases first.
    stacks: dict[str, tuple[tuple[str, ...], _Build]] = {
        c.NETWORK_STACK: ((), lambda made: _scenario("network").node_snat_stack(
            app, env, cluster_name=cluster_name, nat_gateways=nat)),
        c.IPV6_ONLY_STACK: ((), lambda made: _scenario("network").ipv6_only_stack(app, env, nat_gateways=nat)),
        c.IPV6_CLUSTER_STACK: ((c.NETWORK_STACK,), lambda made: _scenario("clusters").ipv6_cluster_stack(
            app, env, network=made[c.NETWORK_STACK], cluster_name=cluster_name)),
        c.IPV4_CLUSTER_STACK: ((), lambda made: _scenario("clusters").ipv4_cluster_stack(app, env, nat_gateways=nat)),
        c.CALICO_STACK: ((c.IPV4_CLUSTER_STACK,), lambda made: _scenario("calico").calico_stack(
            app, env, cluster=made[c.IPV4_CLUSTER_STACK])),
        c.MULTUS_STACK: ((), lambda made: _scenario("multus").MultusStack(
            app, c.MULTUS_STACK, deploy_env=env, nat_gateways=nat)),
    }
    wanted = _with_bases(settings.stacks or tuple(stacks), {name: bases for name, (bases, _) in stacks.items()})
    made: dict[str, cdk.Stack] = {}
    for name, (_, build) in stacks.items():
        if name in wanted:
            made[name] = build(made)
    for name, (bases, _) in stacks.items():
        for base in bases:
            if base in made and name not in made:
                cdk.Annotations.of(made[base]).add_warning_v2(
                    "eksnet:stackSelection",
                    f"{base} is synthesized without {name}, which builds on it ({app_context.STACKS_KEY}): the "
                    f"exports {name} imports are left out; deploy {base} from a synth that includes {name}")
    return made


def _scenario(name: str) -> ModuleType:
    """``apps.<name>``, imported when a stack of it is built: a synth of some stacks loads only their scenarios."""
    return importlib.import_module(f"apps.{name}")


def _with_bases(names: tuple[str, ...], bases: dict[str, tuple[str, ...]]) -> set[str]:
    """``names`` and every stack they build on, directly or not; an unknown name is an error listing the known."""
    unknown = [name for name in names if name not in bases]
    if unknown:
        raise ValueError(f"context {app_context.STACKS_KEY}: unknown stack {', '.join(map(repr, unknown))}; "
                         f"the stacks are {', '.join(bases)}")
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(bases[name])
    return wanted


def build_app(outdir: str | None = None, context: dict | None = None) -> cdk.App:
    # The CLI passes its output directory in CDK_OUTDIR; without the CLI, write to ./cdk.out.
    outdir = outdir or os.environ.get("CDK_OUTDIR") or "cdk.out"
    app = cdk.App(outdir=outdir, context={**app_context.APP_DEFAULTS, **(context or {})})
    add_stacks(app, app_context.read(app))
    nag.add_checks(app)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
