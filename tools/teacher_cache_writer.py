#!/usr/bin/env python3
"""Reference writer of qkd's teacher-logit cache for PyTorch / Hugging Face teachers.

For a teacher too big for qkd's engine: qkd writes the plan (the cache header and the training
token stream, no teacher run), this script runs the teacher (on a GPU, or --device cpu) and writes
the cache, qkd distills from it. The format: docs/teacher-cache.md.

    node dist/src/cli/main.js teacher-cache --config recipe.yaml --plan runs/plan [--shard I/N] [--logit-dtype int8]
    python3 tools/teacher_cache_writer.py --plan runs/plan --out runs/cache --device cuda
    node dist/src/cli/main.js distill --config recipe.yaml --teacher-cache runs/cache --out runs/student

The teacher loads with Hugging Face transformers (AutoModelForCausalLM) when it is installed, else
with the plain-PyTorch Llama of ../shared/peers/torch_llama.py (--peers), so it also runs with
Debian's python3-torch alone. The one place qkd uses Python.
"""
import argparse, hashlib, json, math, os, struct, sys, time, zlib

import numpy as np
import torch

F16_MIN = -65504.0
INT8_MAX_RANGE = 64.0
SQ = np.array([(c / 255) ** 2 for c in range(256)], dtype=np.float32)  # the int8 decode table, as qkd's


def fail(msg):
    sys.exit(f"teacher_cache_writer: error: {msg}")


def align(x, a):
    return (x + a - 1) // a * a


def record_layout(h):
    """Byte offsets of a record (src/io/teacher-cache-format.ts recordLayout)."""
    T, V, k, n_tau = h["T"], h["V"], h["k"], len(h["taus"])
    lb = {"f16": 2, "int8": 1, "f32": 4}[h["logitDtype"]]
    ib = 2 if V <= 65536 else 4
    n_lse = 0 if (lb == 1 and k == V) else n_tau * T
    lse = 8
    tmax = lse + 4 * n_lse  # f16: tmax f32 (T); int8: range f16 (T); f32: neither
    logits = tmax + (4 * T if lb == 2 else 2 * T if lb == 1 else 0)
    ids = align(logits + lb * T * k, ib)
    tokens = align(ids + ib * (0 if k == V else T * k), ib)
    crc = align(tokens + ib * (T + 1), 4)
    return dict(lse=lse, tmax=tmax, logits=logits, ids=ids, tokens=tokens, crc=crc, bytes=align(crc + 4, 8),
                n_lse=n_lse, lb=lb, ib=ib)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lse_rows(lg, taus):
    """(n_tau, T) log Σ_v exp(t_v/τ) per row, in float64 as qkd's topkFromLogits: mt/τ + log Σ exp((t − mt)/τ)."""
    x = lg.astype(np.float64)
    mt = x.max(axis=1, keepdims=True)
    return np.stack([(mt[:, 0] / tau) + np.log(np.exp((x - mt) * (1 / tau)).sum(axis=1)) for tau in taus])


def f16_ceil(x):
    """The smallest float16 >= x (0 <= x <= 65504)."""
    h = np.float16(np.float32(x))
    while float(h) < x:
        h = np.nextafter(h, np.float16(np.inf))
    return h


def encode_int8(top):
    """Square-law codes of max − t per row (src/io/teacher-cache-int8.ts): ranges f16 (T), codes u8 (T,k), decoded, maxima."""
    x = top.astype(np.float64)
    m, lo = x.max(axis=1), x.min(axis=1)
    ranges = np.array([f16_ceil(min(a - b, INT8_MAX_RANGE)) for a, b in zip(m, lo)], dtype=np.float16)
    R = ranges.astype(np.float64)[:, None]
    d = np.minimum(m[:, None] - x, R)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(R > 0, 255 * np.sqrt(d / np.where(R > 0, R, 1)), 0)
    codes = np.minimum(255, np.floor(u + 0.5)).astype(np.uint8)  # Math.round: halves up
    dec = -(ranges.astype(np.float32)[:, None] * SQ[codes])  # float32 products, as the reader computes them
    return ranges, codes, dec, m


def encode_window(start, toks, lg, h, L):
    """One record: window at token `start`, tokens (T+1), teacher logits lg (T, V) float32."""
    T, V, k, taus, dt = h["T"], h["V"], h["k"], h["taus"], h["logitDtype"]
    rec = bytearray(L["bytes"])
    struct.pack_into("<d", rec, 0, float(start))
    lse = lse_rows(lg, taus)
    if k == V:
        top, ids = lg, None
    else:  # descending, ties: lower id first (a stable sort of −t)
        ids = np.argsort(-lg, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(lg, ids, axis=1)
    if not (np.isfinite(top).all() and np.isfinite(lse).all()):
        fail(f"window at {start}: non-finite teacher logits")
    put = lambda off, arr: rec.__setitem__(slice(off, off + arr.nbytes), arr.tobytes())
    if dt == "f32":
        put(L["lse"], lse.astype("<f4"))
        put(L["logits"], top.astype("<f4"))
    elif dt == "f16":
        put(L["lse"], lse.astype("<f4"))
        tmax = top.max(axis=1).astype(np.float32)
        shifted = np.maximum(top.astype(np.float64) - tmax[:, None].astype(np.float64), F16_MIN).astype(np.float32)
        put(L["tmax"], tmax.astype("<f4"))
        put(L["logits"], shifted.astype("<f2"))
    else:
        ranges, codes, dec, m = encode_int8(top)
        put(L["tmax"], ranges.astype("<f2"))
        put(L["logits"], codes)
        if L["n_lse"]:  # top-k: lse of the decoded top-k plus the exact tail, relative to the max
            x = top.astype(np.float64)
            out = []
            for a, tau in enumerate(taus):
                exact = np.exp((x - m[:, None]) / tau).sum(axis=1)
                coded = np.exp(dec.astype(np.float64) / tau).sum(axis=1)
                tail = np.maximum(0.0, np.exp(lse[a] - m / tau) - exact)
                out.append(np.log(coded + tail))
            put(L["lse"], np.stack(out).astype("<f4"))
    idt = "<u2" if L["ib"] == 2 else "<i4"
    if ids is not None:
        put(L["ids"], ids.astype(idt))
    put(L["tokens"], np.asarray(toks).astype(idt))
    struct.pack_into("<I", rec, L["crc"], zlib.crc32(bytes(rec[:L["crc"]])) & 0xFFFFFFFF)
    return rec


def load_teacher(path, device, dtype, peers, attn):
    """A function ids (B, T) -> logits (B, T, V) float32 on the CPU."""
    try:
        from transformers import AutoModelForCausalLM
        kw = {"attn_implementation": attn} if attn else {}
        m = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, **kw).to(device).eval()
        return lambda ids: m(input_ids=ids).logits.float().cpu(), "transformers"
    except ImportError:
        sys.path.insert(0, peers)
        import torch_llama  # the plain-PyTorch Llama (Hugging Face LlamaForCausalLM semantics)
        m = torch_llama.load_llama(path).to(device=device, dtype=dtype)
        return lambda ids: m(ids).float().cpu(), f"plain PyTorch Llama ({os.path.join(peers, 'torch_llama.py')})"


def read_plan(d):
    with open(os.path.join(d, "plan.json")) as f:
        plan = json.load(f)
    if plan.get("format") != "qkd-teacher-cache-plan" or plan.get("version") != 1:
        fail(f"{d}/plan.json: fields \"format\"/\"version\" are {plan.get('format')!r}/{plan.get('version')!r}, expected 'qkd-teacher-cache-plan'/1")
    h = plan["header"]
    L = record_layout(h)
    if L["bytes"] != h["recordBytes"]:
        fail(f"{d}/plan.json: field \"header.recordBytes\" is {h['recordBytes']}, the layout gives {L['bytes']}")
    tokens = np.fromfile(os.path.join(d, plan["tokens"]), dtype="<i4")
    if len(tokens) != h["data"]["tokens"] or hashlib.sha256(tokens.tobytes()).hexdigest() != h["data"]["sha256"]:
        fail(f"{d}/{plan['tokens']}: not the token stream of header field \"data\" ({len(tokens)} tokens)")
    return plan, h, L, tokens


def check_weights(model, h):
    t = h["teacher"]
    if sha256_file(os.path.join(model, "config.json")) != t["configSha256"]:
        fail(f"{model}/config.json: sha256 differs from the plan's field \"teacher.configSha256\" (another teacher?)")
    w = os.path.join(model, "model.safetensors")
    w = w if os.path.exists(w) else os.path.join(model, "model.safetensors.index.json")
    if sha256_file(w) != t["weightsSha256"]:
        fail(f"{w}: sha256 differs from the plan's field \"teacher.weightsSha256\" (another teacher?)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", required=True, help="folder written by `qkd teacher-cache --plan DIR`")
    ap.add_argument("--out", required=True, help="the cache folder to write (must not exist)")
    ap.add_argument("--model", help="teacher folder (default: the plan's teacher.path)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="compute dtype of the teacher")
    ap.add_argument("--batch", type=int, default=16, help="windows per forward")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--attn-implementation", dest="attn", help="transformers' attention (eager: closest to qkd's float32; sdpa, ...)")
    ap.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the teacher files (slow for big models)")
    ap.add_argument("--peers", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peers"),
                    help="folder of torch_llama.py, used when transformers is not installed")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    # float32 means float32: no TF32 products on GPUs that have them
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    plan, h, L, tokens = read_plan(a.plan)
    model = a.model or h["teacher"]["path"]
    if not a.no_verify:
        check_weights(model, h)
    if os.path.exists(a.out) and os.listdir(a.out):
        fail(f"{a.out}: exists and is not empty")
    fwd, how = load_teacher(model, a.device, getattr(torch, a.dtype), a.peers, a.attn)
    T, first, end = h["T"], plan["first"], plan["end"]
    parent, name = os.path.split(os.path.abspath(a.out))
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    os.makedirs(tmp)
    t0 = time.time()
    print(f"teacher_cache_writer: {model} ({how}, {a.device}, {a.dtype}): windows {first}..{end - 1} of T = {T} -> {a.out}", file=sys.stderr)
    with open(os.path.join(tmp, "windows.bin"), "wb") as f, torch.no_grad():
        for w0 in range(first, end, a.batch):
            ws = range(w0, min(w0 + a.batch, end))
            ids = torch.tensor(np.stack([tokens[w * T:w * T + T] for w in ws]), dtype=torch.long, device=a.device)
            logits = fwd(ids).numpy()
            for b, w in enumerate(ws):
                f.write(encode_window(w * T, tokens[w * T:w * T + T + 1], logits[b], h, L))
            print(f"teacher_cache_writer: {ws[-1] + 1 - first}/{end - first} windows, {time.time() - t0:.1f} s", file=sys.stderr)
        f.flush(); os.fsync(f.fileno())
    header = dict(h, complete=True, windows=end - first)
    with open(os.path.join(tmp, "cache.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(header, indent=1, ensure_ascii=False) + "\n")  # JSON.stringify(h, null, 1), as qkd writes it
        f.flush(); os.fsync(f.fileno())
    if os.path.isdir(a.out):
        os.rmdir(a.out)
    os.rename(tmp, a.out)
    print(f"teacher_cache_writer: {end - first} windows in {time.time() - t0:.1f} s -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
