"""eksnet-ipamd: the node daemon that owns the address pools and runs the plugins for the thin executables."""
