"""The native CNI forwarder: ``forward.c`` and its build (``build.py``); see node_runtime/README.md."""
