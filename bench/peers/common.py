"""Shared pieces of the PyTorch CPU peers: thread setup (before torch loads), environment facts,
a safetensors reader (bf16 widened to float32), and a functional Llama keyed by Hugging Face names.

Import order matters: call `threads_from_argv(default)` before the first `import torch` anywhere,
because OpenBLAS and OpenMP read their thread counts when the libraries load.
"""
import ctypes, json, math, os, struct, sys, time

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures"))
TEACHER = os.path.join(FIXTURES, "brown-llama-teacher")


# ------------------------------------------------------------------ threads (before `import torch`)
def set_thread_env(spec):
    """spec "TxB" (T torch/OpenMP threads, B OpenBLAS threads) or "N" (= NxN). Returns (T, B)."""
    t, b = (int(v) for v in (spec.split("x") if "x" in spec else (spec, spec)))
    os.environ["OMP_NUM_THREADS"], os.environ["OPENBLAS_NUM_THREADS"] = str(t), str(b)
    if t > 1 and b > 1:
        # Two thread pools on two cores: busy-waiting OpenMP workers and spinning OpenBLAS workers steal
        # each other's cores unless both back off quickly.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    return t, b


def threads_from_argv(default):
    """Reads --threads from sys.argv early (argparse runs after torch is imported)."""
    spec = default
    for i, a in enumerate(sys.argv):
        if a.startswith("--threads="):
            spec = a.split("=", 1)[1]
        elif a == "--threads" and i + 1 < len(sys.argv):
            spec = sys.argv[i + 1]
    return set_thread_env(spec)


# ------------------------------------------------------------------ environment facts
def blas_facts():
    """Which BLAS library the process loaded, its kernel and thread count (OpenBLAS only)."""
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.rsplit("/", 1)[-1]})
    facts = {"libs": libs}
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_config.restype = h.openblas_get_corename.restype = ctypes.c_char_p
            facts.update(config=h.openblas_get_config().decode(), kernel=h.openblas_get_corename().decode(),
                         threads=h.openblas_get_num_threads())
            break
        except (AttributeError, OSError):
            continue
    return facts


def env_facts(threads):
    import torch
    for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if v in os.environ:
            log(f"note: {v}={os.environ[v]} is set; run under `env -u {v}` for comparable numbers")
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                                       "OPENBLAS_THREAD_TIMEOUT") if k in os.environ}
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "threads_spec": f"{threads[0]}x{threads[1]}",
            "env": env, "blas": blas_facts(), "gemm1024_gflops": gemm_check()}


def gemm_check(n=1024):
    """Best-of-5 1024^3 sgemm; far below 50 GFLOP/s means torch fell back to the reference BLAS."""
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(5))
    g = 2 * n ** 3 / best / 1e9
    if g < 50:
        log(f"WARNING: {n}^3 matmul at {g:.1f} GFLOP/s: OpenBLAS not in use? (apt-get install -y libopenblas0-pthread)")
    return round(g, 1)


class OtherLoad:
    """Cores' worth of CPU used by other processes while the block ran (~0 on a quiet machine)."""

    @staticmethod
    def _sample():
        f = open("/proc/stat").readline().split()[1:9]
        busy = sum(int(v) for i, v in enumerate(f) if i not in (3, 4))   # minus idle and iowait
        own = sum(int(v) for v in open("/proc/self/stat").read().rsplit(")", 1)[1].split()[11:13])
        return busy, own, time.perf_counter()

    def __enter__(self):
        self._start = self._sample()
        return self

    def __exit__(self, *exc):
        busy, own, dt = (a - b for a, b in zip(self._sample(), self._start))
        self.cores = round(max(0.0, (busy - own) / os.sysconf("SC_CLK_TCK") / dt), 3)


def peak_rss_mb():
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ safetensors + Llama
def read_safetensors(path):
    """{name: float32 tensor}. Supports F32 and BF16 (bf16 bits shifted into the top half of an f32)."""
    import numpy as np, torch
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        a, b = m["data_offsets"]
        if m["dtype"] == "BF16":
            x = (np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif m["dtype"] == "F32":
            x = np.frombuffer(data[a:b], dtype="<f4").astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {m['dtype']}")
        out[name] = torch.from_numpy(x.reshape(m["shape"]))
    return out


def load_llama(d=TEACHER):
    """(config dict, params {HF name: float32 tensor})."""
    cfg = json.load(open(os.path.join(d, "config.json")))
    return cfg, read_safetensors(os.path.join(d, "model.safetensors"))


class Llama:
    """LlamaForCausalLM forward (HF eager semantics) over a params dict keyed by HF tensor names."""

    def __init__(self, cfg, params):
        import torch
        self.p, self.H = params, cfg["num_attention_heads"]
        self.KV = cfg.get("num_key_value_heads") or self.H
        self.d = cfg.get("head_dim") or cfg["hidden_size"] // self.H
        self.eps, self.layers = cfg["rms_norm_eps"], cfg["num_hidden_layers"]
        self.tied = cfg.get("tie_word_embeddings", True)
        theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
        inv = 1.0 / theta ** (torch.arange(0, self.d, 2, dtype=torch.float32) / self.d)
        f = torch.outer(torch.arange(cfg["max_position_embeddings"], dtype=torch.float32), inv)
        f = torch.cat((f, f), -1)
        self.cos, self.sin = f.cos(), f.sin()                                  # (maxT, d)

    def rms(self, x, w):
        import torch
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, x, T):
        import torch
        x1, x2 = x.chunk(2, -1)
        return x * self.cos[:T] + torch.cat((-x2, x1), -1) * self.sin[:T]

    def attention(self, i, h, mask):
        import torch.nn.functional as F
        B, T, _ = h.shape
        H, KV, d, L = self.H, self.KV, self.d, f"model.layers.{i}.self_attn."
        q = self.rope(F.linear(h, self.p[L + "q_proj.weight"]).view(B, T, H, d).transpose(1, 2), T)
        k = self.rope(F.linear(h, self.p[L + "k_proj.weight"]).view(B, T, KV, d).transpose(1, 2), T)
        v = F.linear(h, self.p[L + "v_proj.weight"]).view(B, T, KV, d).transpose(1, 2)
        # Query heads kv*G .. kv*G+G-1 share kv head `kv`: stack them along time instead of copying K/V.
        G = H // KV
        att = q.reshape(B, KV, G * T, d) @ (k.transpose(-1, -2) * (1.0 / math.sqrt(d)))  # (B,KV,G*T,T)
        att = (att.view(B, KV, G, T, T) + mask).view(B, KV, G * T, T).softmax(-1)
        y = (att @ v).view(B, H, T, d).transpose(1, 2).reshape(B, T, H * d)
        return F.linear(y, self.p[L + "o_proj.weight"])

    def __call__(self, ids):
        """ids (B,T) int64 -> logits (B,T,V)."""
        import torch, torch.nn.functional as F
        T, p = ids.shape[1], self.p
        mask = torch.full((T, T), float("-inf")).triu(1)
        emb = p["model.embed_tokens.weight"]
        x = F.embedding(ids, emb)
        for i in range(self.layers):
            L = f"model.layers.{i}."
            x = x + self.attention(i, self.rms(x, p[L + "input_layernorm.weight"]), mask)
            h = self.rms(x, p[L + "post_attention_layernorm.weight"])
            g, u = F.linear(h, p[L + "mlp.gate_proj.weight"]), F.linear(h, p[L + "mlp.up_proj.weight"])
            x = x + F.linear(F.silu(g) * u, p[L + "mlp.down_proj.weight"])
        head = emb if self.tied else p["lm_head.weight"]
        return F.linear(self.rms(x, p["model.norm.weight"]), head)


def check_teacher(model):
    """Max abs diff of the teacher's logits against the Hugging Face reference (expect ~1e-5)."""
    import numpy as np, torch
    ref = json.load(open(os.path.join(TEACHER, "reference.json")))
    want = torch.from_numpy(np.fromfile(os.path.join(TEACHER, "reference-logits.f32"), dtype="<f4").astype(np.float32))
    with torch.no_grad():
        got = model(torch.tensor([ref["logits_input_ids"]]))[0]
    return float((got - want.view(*ref["logits_shape"])).abs().max())
