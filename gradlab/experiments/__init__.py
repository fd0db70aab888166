"""Experiments: run configurations, single runs, sweeps and the reproduction of every figure."""
