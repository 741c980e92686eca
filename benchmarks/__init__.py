"""Speed tables of slth against its peers; each module runs as ``python -m benchmarks.<name>``."""
