"""edgert's benchmarks. Imported before numpy by every `python -m bench.*` entry point."""
import os

# numpy's OpenBLAS keeps worker threads busy-waiting after each BLAS call (model building and
# calibration make many): on a 2-core machine they take the second core from the 2-thread runs of
# both runtimes. The benchmarks do no BLAS work worth threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
