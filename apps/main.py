"""The default app of ``cdk.json``: every walkthrough scenario as a stack, composed here.

Run by the CDK CLI (``npx cdk synth``) or directly (``python -m apps.main``); both write the cloud assembly to
``cdk.out/``. The context (``apps.context``) is read once; each scenario module builds its stacks from plain
arguments, and the stacks one builds on are passed to it: ``EksnetIpv6Cluster`` gets ``EksnetNetwork`` (its
VPC), ``EksnetCalico`` gets ``EksnetIpv4Cluster`` (its cluster).

``-c eksnet:stacks=EksnetCalico,EksnetMultus`` builds only those stacks and the ones they build on, each as in
the whole app: iterating on one stack does not pay for all six.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import aws_cdk as cdk
from eksnet import nag

from apps import calico, clusters, multus, network
from apps import context as app_context


def add_stacks(app: cdk.App, settings: app_context.AppSettings) -> dict[str, cdk.Stack]:
    """The stacks ``settings.stacks`` selects (all when empty) and the stacks they build on, by name."""
    env, nat = settings.deploy_env, settings.nat_gateways

    # Each builder runs at most once; a stack that builds on another calls that one's builder.
    @functools.cache
    def node_snat_network() -> network.NetworkStack:
        return network.node_snat_stack(app, env, cluster_name=settings.cluster_name, nat_gateways=nat)

    @functools.cache
    def ipv6_cluster() -> clusters.ClusterStack:
        return clusters.ipv6_cluster_stack(app, env, network=node_snat_network(), cluster_name=settings.cluster_name)

    @functools.cache
    def ipv4_cluster() -> clusters.ClusterStack:
        return clusters.ipv4_cluster_stack(app, env, nat_gateways=nat)

    builders: dict[str, Callable[[], cdk.Stack]] = {  # the default app's order
        network.NETWORK_STACK: node_snat_network,
        network.IPV6_ONLY_STACK: lambda: network.ipv6_only_stack(app, env, nat_gateways=nat),
        clusters.IPV6_CLUSTER_STACK: ipv6_cluster,
        clusters.IPV4_CLUSTER_STACK: ipv4_cluster,
        calico.CALICO_STACK: lambda: calico.calico_stack(app, env, cluster=ipv4_cluster()),
        multus.MULTUS_STACK: lambda: multus.MultusStack(app, multus.MULTUS_STACK, deploy_env=env,
                                                        nat_gateways=nat),
    }
    unknown = [name for name in settings.stacks if name not in builders]
    if unknown:
        raise ValueError(f"context {app_context.STACKS_KEY}: unknown stack {', '.join(map(repr, unknown))}; "
                         f"the stacks are {', '.join(builders)}")
    for name, build in builders.items():
        if not settings.stacks or name in settings.stacks:
            build()
    return {child.stack_name: child for child in app.node.children if isinstance(child, cdk.Stack)}


def build_app(outdir: str | None = None, context: dict | None = None) -> cdk.App:
    # The CLI passes its output directory in CDK_OUTDIR; without the CLI, write to ./cdk.out.
    outdir = outdir or os.environ.get("CDK_OUTDIR") or "cdk.out"
    app = cdk.App(outdir=outdir, context=context or None)
    add_stacks(app, app_context.read(app))
    nag.add_checks(app)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
