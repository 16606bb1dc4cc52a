"""Tools around the product: the demo, its workload, the worker runner, the benchmarks. Used by no layer."""
