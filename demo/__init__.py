"""``make demo``: the whole Multus flow of ``EksnetMultus`` on one machine, with moto as AWS (see README)."""
