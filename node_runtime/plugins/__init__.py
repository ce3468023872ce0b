"""The CNI plugins, one module per CNI type family, looked up by type name.

Imports are lazy so that running ``eksnet-ipam`` never imports pyroute2."""

from __future__ import annotations

import importlib

from ..cni.skeleton import Plugin

TYPES = {
    "eksnet-ipam": ("node_runtime.plugins.ipam", "EksnetIpam", ()),
    "eksnet-ipvlan": ("node_runtime.plugins.link", "LinkPlugin", ("ipvlan",)),
    "eksnet-macvlan": ("node_runtime.plugins.link", "LinkPlugin", ("macvlan",)),
}
_cache: dict[str, Plugin] = {}


def get_plugin(name: str) -> Plugin | None:
    if name not in TYPES:
        return None
    if name not in _cache:
        module, cls, args = TYPES[name]
        _cache[name] = getattr(importlib.import_module(module), cls)(*args)
    return _cache[name]
