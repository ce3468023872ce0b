"""CDK apps: one module per scenario of the seed documents; ``apps.context`` reads the ``eksnet:*`` context keys
and ``apps.main`` composes the default app from them."""
