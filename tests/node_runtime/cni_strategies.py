"""Hypothesis strategies for fuzzed CNI input (environment and stdin), and the CNI versions every test loops
over. The harness itself (namespaces, daemon, CNI calls) is ``node_runtime.lab``; its fixtures are in
tests/support/netns.py."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from node_runtime.cni.protocol import SUPPORTED_VERSIONS

VERSIONS = SUPPORTED_VERSIONS  # every spec version the plugins support: tests loop over each

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
keys = st.sampled_from(["cniVersion", "name", "type", "ipam", "master", "mode", "mtu", "prevResult", "routes",
                        "ranges", "cni.dev/valid-attachments", "pool", "disableCheck"])
configs = st.fixed_dictionaries(
    {"cniVersion": st.sampled_from([*VERSIONS, "9.9.9", ""]) | json_values, "name": st.just("n") | json_values,
     "type": st.just("eksnet-ipam") | json_values},
    optional={"ipam": st.fixed_dictionaries({}, optional={
        "type": st.just("eksnet-ipam"), "ranges": st.just([[{"subnet": "10.0.0.0/24"}]]) | json_values,
        "routes": json_values, "pool": json_values}) | json_values,
        "master": json_values, "mode": json_values, "mtu": json_values, "prevResult": json_values,
        "cni.dev/valid-attachments": json_values})
stdins = (configs.map(lambda c: json.dumps(c).encode()) | st.dictionaries(keys, json_values).map(
    lambda c: json.dumps(c).encode()) | st.binary(max_size=64))
envs = st.fixed_dictionaries({"CNI_COMMAND": st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "x"])},
                             optional={"CNI_CONTAINERID": st.text(max_size=12), "CNI_IFNAME": st.text(max_size=20),
                                       "CNI_NETNS": st.text(max_size=12), "CNI_ARGS": st.text(max_size=20),
                                       "CNI_PATH": st.text(max_size=12)})
