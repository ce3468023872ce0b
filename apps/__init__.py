"""CDK apps: one module per scenario of the seed documents; ``apps.main`` composes the default app."""
