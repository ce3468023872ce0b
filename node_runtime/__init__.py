"""eksnet node runtime: CNI plugins and the IPAM daemon shipped onto worker nodes (no CDK here)."""
