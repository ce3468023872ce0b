"""The IPAM service over the SQLite store: idempotence, restart recovery, GC, reconciliation."""

from __future__ import annotations

import sqlite3

import pytest

from node_runtime.ipam.allocator import ConfigError
from node_runtime.ipam.service import IpamService
from node_runtime.ipam.store import Store

V4 = {"ranges": [[{"subnet": "10.1.0.0/29"}]]}
DUAL = {"ranges": [[{"subnet": "10.2.0.0/24"}], [{"subnet": "fd02::/80"}]]}




@pytest.fixture
def service(tmp_path, clock):
    svc = IpamService(Store(tmp_path), cooldown=30, clock=clock)
    yield svc
    svc.store.close()


def reopen(svc: IpamService, tmp_path, clock) -> IpamService:
    svc.store.close()
    return IpamService(Store(tmp_path), cooldown=30, clock=clock)


def ips(leases) -> list[str]:
    return [lease.interface() for lease in leases]


def test_add_is_idempotent_per_network_container_and_ifname(service):
    first = ips(service.add("n", "c1", "net1", "/ns", V4))
    assert ips(service.add("n", "c1", "net1", "/ns", V4)) == first
    assert ips(service.add("n", "c1", "net2", "/ns", V4)) != first


def test_dual_stack_add_gets_one_address_per_range_set(service):
    got = ips(service.add("n", "c1", "net1", "/ns", DUAL))
    assert got == ["10.2.0.2/24", "fd02::2/80"]  # .1 / ::1 reserved as host-local does


def test_release_of_an_unknown_attachment_releases_nothing_and_succeeds(service):
    assert service.release("n", "nobody", "net1") == 0


def test_leases_cursors_and_cooldowns_survive_a_restart(service, tmp_path, clock):
    a = ips(service.add("n", "c1", "net1", "/ns", V4))
    b = ips(service.add("n", "c2", "net1", "/ns", V4))
    service.release("n", "c1", "net1")
    again = reopen(service, tmp_path, clock)
    assert ips(again.lookup("n", "c2", "net1")) == b
    assert again.lookup("n", "c1", "net1") is None
    fresh = ips(again.add("n", "c3", "net1", "/ns", V4))
    assert fresh not in (a, b)  # the cursor moved on, and c1's address is still cooling
    assert again.status()["pools"][0]["cooling"] == 1
    again.store.close()


def test_gc_releases_every_attachment_not_listed_as_valid(service):
    for cid in ("keep", "drop1", "drop2"):
        service.add("n", cid, "net1", "/ns", V4)
    service.add("other", "drop1", "net1", "/ns", {"ranges": [[{"subnet": "10.9.0.0/29"}]]})
    assert service.gc("n", {("keep", "net1")}) == 2
    assert service.lookup("n", "keep", "net1") is not None
    assert service.lookup("other", "drop1", "net1") is not None  # GC is per network


def test_reconcile_releases_leases_whose_namespace_is_gone_after_the_grace_period(service, clock):
    service.add("n", "gone", "net1", "/run/netns/gone", V4)
    service.add("n", "alive", "net1", "/run/netns/alive", V4)
    exists = {"/run/netns/alive"}.__contains__
    assert service.reconcile(grace=60, exists=exists) == 0
    clock.now += 61
    assert service.reconcile(grace=60, exists=exists) == 1
    assert service.lookup("n", "gone", "net1") is None and service.lookup("n", "alive", "net1") is not None


def test_overlapping_ranges_of_different_networks_never_hand_out_one_address_twice(service):
    small = {"ranges": [[{"subnet": "10.3.0.0/29", "gateway": "10.3.0.1"}]]}
    wide = {"ranges": [[{"subnet": "10.3.0.0/28", "gateway": "10.3.0.1"}]]}
    got = ips(service.add("a", "c1", "net1", "/ns", small)) + ips(service.add("b", "c1", "net1", "/ns", wide))
    got += ips(service.add("a", "c2", "net1", "/ns", small)) + ips(service.add("b", "c2", "net1", "/ns", wide))
    assert len({g.split("/")[0] for g in got}) == 4


def test_networks_naming_the_same_ranges_share_one_pool(service):
    a = ips(service.add("a", "c1", "net1", "/ns", V4))
    b = ips(service.add("b", "c1", "net1", "/ns", V4))
    assert a != b


def test_a_failed_write_leaves_memory_as_on_disk(service):
    service.add("n", "c1", "net1", "/ns", V4)
    before = service.status()
    service.store.db.close()
    with pytest.raises(sqlite3.Error):
        service.add("n", "c2", "net1", "/ns", V4)
    with pytest.raises(sqlite3.Error):
        service.release("n", "c1", "net1")
    assert service.status()["pools"] == before["pools"]
    assert service.lookup("n", "c1", "net1") is not None
    service.store = Store(service.store.path.parent)


def test_named_pools_come_from_the_daemon_config(tmp_path, clock):
    svc = IpamService(Store(tmp_path), named_pools={"multus": V4}, clock=clock)
    assert ips(svc.add("n", "c1", "net1", "/ns", {"pool": "multus"})) == ["10.1.0.2/29"]
    with pytest.raises(ConfigError, match="unknown pool"):
        svc.add("n", "c2", "net1", "/ns", {"pool": "nope"})
    svc.store.close()


def test_metrics_are_prometheus_text_with_an_allocation_histogram(service):
    service.add("n", "c1", "net1", "/ns", V4)
    text = service.metrics()
    assert 'eksnet_ipam_allocation_seconds_bucket{le="+Inf"} 1' in text
    assert "eksnet_ipam_allocation_seconds_count 1" in text
    assert "# TYPE eksnet_ipam_leases gauge" in text
    assert "eksnet_ipam_free_addresses{" in text


def test_the_state_file_is_private(service):
    assert service.store.path.stat().st_mode & 0o777 == 0o600
