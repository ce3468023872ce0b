"""The evaluator on a cluster snapshot as kubectl prints it, and its command line."""

from __future__ import annotations

import json

import pytest
from eksnet import policy
from eksnet.policy_eval import Cluster, ContainerPort, Protocol, main


def pod(name: str, namespace: str, labels: dict, ips: list[str], *, ports=(), host_network=False) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"hostNetwork": host_network,
                 "containers": [{"name": "c", "image": "busybox", "ports": list(ports)}]},
        "status": {"podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]},
    }


# What `kubectl get namespaces,pods,networkpolicies -A -o json` prints for the seed's cluster.
SNAPSHOT = {
    "apiVersion": "v1", "kind": "List",
    "items": [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "deploy1", "labels": {"kubernetes.io/metadata.name": "deploy1", "team": "a"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "deploy2"}},
        pod("deploy1-abc", "deploy1", {"app": "deploy1"}, ["192.168.42.16"],
            ports=[{"name": "http", "containerPort": 8080}, {"containerPort": 9000}]),
        pod("deploy2-def", "deploy2", {"app": "deploy2"}, ["192.168.7.21"]),
        pod("node-agent", "kube-system", {"app": "agent"}, ["192.168.1.1"], host_network=True),
        policy.default_deny_egress("deploy2").to_manifest(),
    ],
}


def test_snapshot_reads_pods_with_their_addresses_and_named_ports():
    cluster = Cluster.from_manifests([SNAPSHOT])
    assert cluster.pod("deploy1", "deploy1-abc").ports == (ContainerPort("http", 8080, Protocol.TCP),)


def test_snapshot_reads_namespace_labels():
    cluster = Cluster.from_manifests([SNAPSHOT])
    assert cluster.namespaces["deploy1"].labels["team"] == "a"


def test_snapshot_leaves_host_network_pods_out():
    with pytest.raises(KeyError):
        Cluster.from_manifests([SNAPSHOT]).pod("kube-system", "node-agent")


def test_snapshot_policies_apply():
    cluster = Cluster.from_manifests([SNAPSHOT])
    assert not cluster.allowed(cluster.pod("deploy2", "deploy2-def"), "192.168.42.16", protocol=Protocol.ICMP)


@pytest.fixture()
def snapshot_file(tmp_path):
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(SNAPSHOT))
    return path


def test_cli_exits_1_and_says_why_for_a_denied_connection(snapshot_file, capsys):
    code = main([str(snapshot_file), "--from", "deploy2/deploy2-def", "--to", "deploy1/deploy1-abc",
                 "--protocol", "ICMP"])
    assert (code, capsys.readouterr().out.split(":")[0]) == (1, "denied")


def test_cli_exits_0_for_an_allowed_connection(snapshot_file, capsys):
    code = main([str(snapshot_file), "--from", "deploy1/deploy1-abc", "--to", "192.168.7.21", "--port", "80"])
    assert (code, capsys.readouterr().out.split(":")[0]) == (0, "allowed")


def test_cli_tries_extra_policies_from_further_files(snapshot_file, tmp_path):
    extra = tmp_path / "allow.json"
    extra.write_text(json.dumps(policy.allow_egress("deploy2", "to-deploy1", peers=[
        policy.Peer.namespaces(policy.namespace_named("deploy1"))]).to_manifest()))
    code = main([str(snapshot_file), str(extra), "--from", "deploy2/deploy2-def", "--to", "deploy1/deploy1-abc",
                 "--protocol", "ICMP"])
    assert code == 0


def test_cli_exits_2_on_an_unknown_pod(snapshot_file, capsys):
    code = main([str(snapshot_file), "--from", "deploy2/nope", "--to", "192.168.7.21", "--port", "80"])
    assert (code, "no pod deploy2/nope" in capsys.readouterr().err) == (2, True)


def test_cli_resolves_a_named_port_on_the_destination_pod(snapshot_file, capsys):
    code = main([str(snapshot_file), "--from", "deploy1/deploy1-abc", "--to", "deploy1/deploy1-abc",
                 "--port", "http"])
    out = capsys.readouterr().out
    assert code == 0 and "TCP/8080 (http)" in out


def test_cli_refuses_a_port_name_the_pod_does_not_have(snapshot_file, capsys):
    code = main([str(snapshot_file), "--from", "deploy2/deploy2-def", "--to", "deploy1/deploy1-abc",
                 "--port", "grpc"])
    err = capsys.readouterr().err
    assert code == 2 and "no container port named 'grpc' (named ports: http=8080/TCP)" in err
