"""bench/bench_models.py's report: the speed-up table after the latency rows.

Oracle: the 1-thread median over the n-thread median, computed here from the same rows.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import bench_models  # noqa: E402


def _row(model, variant, threads, ours, theirs):
    return {"model": model, "variant": variant, "threads": threads,
            "edgert": {"median_ms": ours}, "onnxruntime": {"median_ms": theirs}}


def test_speedups_are_one_thread_over_n_threads(capsys):
    results = [_row("a", "v1", 1, 4.0, 6.0), _row("a", "v1", 2, 2.5, 4.8),
               _row("b", "v2", 1, 0.011, 0.027), _row("b", "v2", 2, 0.014, 0.048)]
    bench_models.print_speedups(results, [1, 2])
    out = capsys.readouterr().out.splitlines()
    lines = [ln for ln in out if ln.startswith(("| a ", "| b "))]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    assert cells[0] == ["a", "v1", f"{4.0 / 2.5:.2f}x", f"{6.0 / 4.8:.2f}x"]
    assert cells[1] == ["b", "v2", f"{0.011 / 0.014:.2f}x", f"{0.027 / 0.048:.2f}x"]


def test_no_speedup_table_without_one_thread_rows(capsys):
    bench_models.print_speedups([_row("a", "v1", 2, 2.5, 4.8)], [2])
    assert capsys.readouterr().out == ""
