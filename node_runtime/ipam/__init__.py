"""eksnet IPAM: a pure allocator, a SQLite store, and the service that joins them (run by the daemon)."""
