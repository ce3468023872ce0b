"""Side-by-side benchmarks: each module measures eksnet and a reference in one run and reports ratios."""
