"""fp32 matmul GFLOP/s of torch (and numpy) for A.B, A^T.B, A.B^T at n = 256, 512, 1024.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 -B bench/peers/matmul.py [--threads 1|2]

Without --threads it runs itself once per thread count (1, then 2) and merges the results, since
OpenBLAS fixes its thread count when it loads. The transposed operands are non-contiguous views
(`a.t()`, `a.T`), so the BLAS receives a transpose flag rather than a copied matrix.
Prints human-readable lines to stderr and one JSON line to stdout.
"""
import json, os, statistics, subprocess, sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

SIZES = (256, 512, 1024)
VARIANTS = {"AB": lambda a, b: (a, b), "AtB": lambda a, b: (a.T, b), "ABt": lambda a, b: (a, b.T)}


def gflops(mm, a, b, n, samples=7, min_s=0.05):
    """Median over `samples` of GFLOP/s, each sample looping long enough (>= min_s) to swamp timer noise."""
    for _ in range(3):
        mm(a, b)
    one = min(common.timed(lambda: mm(a, b)) for _ in range(3))
    inner = max(1, int(min_s / max(one, 1e-6)))

    def sample():
        for _ in range(inner):
            mm(a, b)

    return round(statistics.median(2 * n ** 3 * inner / common.timed(sample) / 1e9 for _ in range(samples)), 1)


def run_one(threads):
    common.set_thread_env(f"{threads}x{threads}")
    import torch
    torch.set_num_threads(threads)
    try:
        import numpy as np
    except ImportError:
        np = None
    engines = {"torch": (torch.matmul, lambda n, s: torch.randn(n, n, generator=torch.Generator().manual_seed(s)))}
    if np is not None:
        engines["numpy"] = (np.matmul, lambda n, s: np.random.default_rng(s).standard_normal((n, n), dtype=np.float32))
    res = {}
    with common.OtherLoad() as other:
        for eng, (mm, make) in engines.items():
            for n in SIZES:
                a, b = make(n, 1), make(n, 2)
                for v, prep in VARIANTS.items():
                    x, y = prep(a, b)
                    g = gflops(mm, x, y, n)
                    res.setdefault(eng, {}).setdefault(str(n), {})[v] = g
                    common.log(f"threads {threads}  {eng:5s} n={n:4d} {v:3s} {g:7.1f} GFLOP/s")
    return {"threads": threads, "results": res, "other_load_cores": other.cores, "blas": common.blas_facts(),
            "numpy": getattr(np, "__version__", None), "torch": torch.__version__}


def main():
    args = sys.argv[1:]
    if "--threads" in args:
        print(json.dumps(run_one(int(args[args.index("--threads") + 1]))))
        return
    runs = []
    for t in (1, 2):
        out = subprocess.run([sys.executable, "-B", os.path.abspath(__file__), "--threads", str(t)],
                             stdout=subprocess.PIPE, check=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps({"engine": "pytorch-cpu", "bench": "matmul-fp32", "unit": "GFLOP/s (2n^3 / s)",
                      "timing": "median of 7 samples after warm-up; each sample loops >= 50 ms",
                      "runs": runs}))


if __name__ == "__main__":
    main()
