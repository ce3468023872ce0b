"""Pools that change under live leases (issue 12 item 3), at the service level: a node gains or
loses a delegated prefix, a user edits a range. Leases inside the new ranges stay, leases outside
are reported and released when their pod goes, no ADD fails because a range changed, and the
store needs no hand editing. Bounded state (item 4): expired cooldowns are pruned."""

from __future__ import annotations

import sqlite3

import pytest

from node_runtime.ipam.allocator import Exhausted
from node_runtime.ipam.service import IpamService
from node_runtime.ipam.store import Store

A = {"subnet": "10.60.0.16/28", "delegated": True}
B = {"subnet": "10.60.0.32/28", "delegated": True}




def open_service(tmp_path, clock, pools=None, cooldown=30.0) -> IpamService:
    return IpamService(Store(tmp_path), cooldown=cooldown, named_pools=pools, clock=clock)


def first_ip(leases) -> str:
    return leases[0].ip


def test_a_delegated_prefix_gives_16_addresses_and_a_second_prefix_added_on_reload_gives_16_more(tmp_path, clock):
    svc = open_service(tmp_path, clock, {"multus": {"ranges": [[A]]}})
    got = [first_ip(svc.add("n", f"c{i}", "net1", "/ns", {"pool": "multus"})) for i in range(16)]
    assert len(set(got)) == 16
    with pytest.raises(Exhausted):
        svc.add("n", "c16", "net1", "/ns", {"pool": "multus"})
    svc.set_named_pools({"multus": {"ranges": [[A, B]]}})  # the node got a second prefix
    more = [first_ip(svc.add("n", f"d{i}", "net1", "/ns", {"pool": "multus"})) for i in range(16)]
    assert all(ip.startswith("10.60.0.") and 32 <= int(ip.rsplit(".", 1)[1]) < 48 for ip in more)
    assert svc.status()["outside"] == 0
    svc.store.close()


def test_a_prefix_removed_under_live_leases_reports_them_until_their_pods_go(tmp_path, clock):
    svc = open_service(tmp_path, clock, {"multus": {"ranges": [[A, B]]}})
    leases = {f"c{i}": first_ip(svc.add("n", f"c{i}", "net1", "/ns", {"pool": "multus"})) for i in range(18)}
    in_b = [c for c, ip in leases.items() if int(ip.rsplit(".", 1)[1]) >= 32]
    assert len(in_b) == 2
    svc.set_named_pools({"multus": {"ranges": [[B]]}})  # prefix A went away: 16 leases now outside
    status = svc.status()
    assert status["outside"] == 16 and status["named_pools"]["multus"]["outside"] == 16
    assert "eksnet_ipam_outside_leases 16" in svc.metrics()
    assert svc.lookup("n", "c0", "net1")[0].ip == leases["c0"]  # still leased to its pod
    new = first_ip(svc.add("n", "fresh", "net1", "/ns", {"pool": "multus"}))
    assert int(new.rsplit(".", 1)[1]) >= 32 and new not in leases.values()
    for c in leases:
        if c not in in_b:
            svc.release("n", c, "net1")
    assert svc.status()["outside"] == 0
    svc.store.close()


def test_a_restart_with_a_narrowed_pool_keeps_and_reports_the_outside_lease(tmp_path, clock):
    svc = open_service(tmp_path, clock, {"p": {"ranges": [[{"subnet": "10.61.0.0/28"}]]}})
    ips = [first_ip(svc.add("n", f"c{i}", "net1", "/ns", {"pool": "p"})) for i in range(3)]
    svc.store.close()
    narrowed = {"p": {"ranges": [[{"subnet": "10.61.0.0/28", "rangeStart": ips[1]}]]}}
    again = open_service(tmp_path, clock, narrowed)
    assert again.status()["outside"] == 1
    assert again.outside_list()[0]["addresses"] == [ips[0]]
    assert first_ip(again.add("n", "c9", "net1", "/ns", {"pool": "p"})) not in ips
    again.store.close()


def test_editing_range_end_in_a_network_config_keeps_working_and_reports(tmp_path, clock):
    svc = open_service(tmp_path, clock)
    wide = {"ranges": [[{"subnet": "10.62.0.0/24", "rangeEnd": "10.62.0.20"}]]}
    ips = [first_ip(svc.add("n", f"c{i}", "net1", "/ns", wide)) for i in range(4)]
    narrow = {"ranges": [[{"subnet": "10.62.0.0/24", "rangeEnd": ips[1]}]]}
    svc.store.close()
    svc = open_service(tmp_path, clock)  # a restart, then the edited NAD's first ADD
    with pytest.raises(Exhausted):  # .2 and .3 are leased: nothing left in .2-.3, but no code 7
        svc.add("n", "new", "net1", "/ns", narrow)
    assert svc.status()["outside"] == 2
    wider = {"ranges": [[{"subnet": "10.62.0.0/24", "rangeEnd": "10.62.0.30"}]]}
    assert first_ip(svc.add("n", "new", "net1", "/ns", wider)) not in ips
    assert svc.status()["outside"] == 0
    svc.store.close()


def test_cooldowns_are_pruned_from_memory_and_from_the_store_once_over(tmp_path, clock):
    svc = open_service(tmp_path, clock, cooldown=30)
    net = {"ranges": [[{"subnet": "fd63::/80"}]]}
    for i in range(50):
        svc.add("n", f"c{i}", "net1", "/ns", net)
        svc.release("n", f"c{i}", "net1")
    assert svc.status()["pools"][0]["cooling"] == 50
    clock.now += 31
    svc.add("n", "later", "net1", "/ns", net)
    assert svc.status()["pools"][0]["cooling"] == 0 and not svc.cooling_fifo
    rows = sqlite3.connect(svc.store.path).execute("SELECT count(*) FROM cooling").fetchone()[0]
    assert rows == 0
    svc.store.close()


def test_start_up_reads_only_live_leases_and_unexpired_cooldowns(tmp_path, clock):
    store = Store(tmp_path)
    with store.transaction() as db:  # 20000 addresses released long ago, as a daemon down for a while leaves them
        db.executemany("INSERT INTO cooling VALUES (?, ?, ?)",
                       [("k", f"fd64::{i:x}", 10.0) for i in range(20000)] + [("k", "fd64::ffff", 2000.0)])
    store.close()
    svc = open_service(tmp_path, clock)
    assert len(svc.cooling[6]) == 1  # only the one still cooling
    net = {"ranges": [[{"subnet": "fd64::/112", "rangeStart": "fd64::ffff", "rangeEnd": "fd64::ffff"}]]}
    with pytest.raises(Exhausted) as err:
        svc.add("n", "c", "net1", "/ns", net)
    assert err.value.cooling == 1
    svc.store.close()


def test_a_namespace_path_that_is_not_utf8_is_stored_and_restored(tmp_path, clock):
    svc = open_service(tmp_path, clock)
    odd = b"/run/netns/\xff\xfe".decode("utf-8", "surrogateescape")
    svc.add("n", "c1", "net1", odd, {"ranges": [[{"subnet": "10.65.0.0/29"}]]})
    svc.store.close()
    again = open_service(tmp_path, clock)
    assert again.owners[("n", "c1", "net1")].netns == odd
    assert again.reconcile(grace=0) == 1  # the path does not exist: released
    again.store.close()


def test_a_version_1_store_is_migrated_and_its_leases_kept(tmp_path, clock):
    db = sqlite3.connect(tmp_path / "leases.db")
    db.executescript("""
        CREATE TABLE leases (pool TEXT NOT NULL, address TEXT NOT NULL, network TEXT NOT NULL,
            container_id TEXT NOT NULL, ifname TEXT NOT NULL, netns TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (pool, address), UNIQUE (network, container_id, ifname, pool));
        CREATE TABLE cooling (pool TEXT NOT NULL, address TEXT NOT NULL, ready_at REAL NOT NULL,
            PRIMARY KEY (pool, address));
        CREATE TABLE cursors (pool TEXT NOT NULL, range_index INTEGER NOT NULL, cursor TEXT NOT NULL,
            PRIMARY KEY (pool, range_index));""")
    key = '[{"rangeEnd":"10.66.0.7","rangeStart":"10.66.0.0","subnet":"10.66.0.0/29"}]'
    db.execute("INSERT INTO leases VALUES (?, '10.66.0.1', 'n', 'old', 'net1', '/ns', 1.0)", (key,))
    db.execute("INSERT INTO cursors VALUES (?, 0, ?)", (key, str(0x0A420002)))
    db.commit()
    db.close()
    svc = open_service(tmp_path, clock)
    assert svc.lookup("n", "old", "net1")[0].ip == "10.66.0.1"
    assert first_ip(svc.add("n", "new", "net1", "/ns", {"ranges": [[{"subnet": "10.66.0.0/29"}]]})) != "10.66.0.1"
    svc.store.close()
