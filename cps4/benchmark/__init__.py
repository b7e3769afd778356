"""Benchmarks of whole methods (train + test over seeds and label ratios)."""
from .ssl_benchmark import (METHODS, PRECISIONS, SCHEDULES, Cell, Method,
                            Schedule, SSLBenchmark, plan_cells, results_table)

__all__ = [
    'METHODS', 'PRECISIONS', 'SCHEDULES', 'Cell', 'Method', 'Schedule',
    'SSLBenchmark', 'plan_cells', 'results_table'
]
