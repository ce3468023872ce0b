"""The node side of eksnet's Multus ENIs: name and configure each ENI, describe its delegated prefixes to
``eksnet-ipamd`` (``setup``), and tell kubelet whether the node is ready for pods (``ready``).

Both read one JSON config, ``/etc/eksnet/multus.json``, that the node user data writes
(``eksnet.multus.MultusNetworking`` renders it: see ``config.py`` for its keys). Both honour
``EKSNET_IMDS`` (the instance metadata base URL) and ``EKSNET_ROOT`` (a prefix for every file they
read or write), so tests and ``make demo`` run them in a network namespace against a stand-in IMDS.
"""
