"""Speed benchmarks (``make bench``). Each ``bench_*.py`` module defines ``run() -> list[Result]``."""
