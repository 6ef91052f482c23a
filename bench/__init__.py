"""clothparse.bench: the benchmark suite behind `cpt bench`."""
