"""The CNI protocol shared by every eksnet plugin: environment, stdin, versions, results, errors.

Kept import-light: the thin executables import ``node_runtime.cni.forward`` only."""
