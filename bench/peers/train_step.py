"""One float32 training step of the brown-llama-teacher architecture in plain PyTorch (CPU).

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 -B bench/peers/train_step.py [--threads 2x2]

Step = forward + mean next-token cross-entropy, backward, clip_grad_norm_(1.0), AdamW (lr 1.5e-3,
betas 0.9/0.95, eps 1e-8, wd 0.1), zero_grad. Weights start from the teacher's bf16 checkpoint widened
to float32. Batch 16 x 128 predicted tokens (fresh random ids each step, 16 x 129 sampled: inputs are
the first 128, targets the last 128). Reports the median of --steps steps after 3 warm-up steps.
"""
import argparse, json, os, statistics, sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

THREADS = common.threads_from_argv("2x2")
import torch
import torch.nn.functional as F


def step_fn(model, params, opt, batch, ctx, vocab, gen):
    """Returns a function running one step and returning (loss, fwd_s, bwd_s, opt_s)."""
    def step():
        xy = torch.randint(0, vocab, (batch, ctx + 1), generator=gen)
        t0 = common.time.perf_counter()
        logits = model(xy[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), xy[:, 1:].reshape(-1))
        t1 = common.time.perf_counter()
        loss.backward()
        t2 = common.time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = common.time.perf_counter()
        return loss.item(), t1 - t0, t2 - t1, t3 - t2
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="2x2", help="TxB: T torch threads x B OpenBLAS threads (default 2x2)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--foreach", action="store_true", help="AdamW(foreach=True): multi-tensor update")
    a = ap.parse_args()
    torch.set_num_threads(THREADS[0])
    torch.manual_seed(0)
    env = common.env_facts(THREADS)
    cfg, weights = common.load_llama()
    params = {k: v.clone().requires_grad_() for k, v in weights.items()}
    model = common.Llama(cfg, params)
    plist = list(params.values())
    opt = torch.optim.AdamW(plist, lr=1.5e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                            foreach=True if a.foreach else None)
    step = step_fn(model, plist, opt, a.batch, a.ctx, cfg["vocab_size"], torch.Generator().manual_seed(1))
    for _ in range(a.warmup):
        step()
    rows = []
    with common.OtherLoad() as other:
        for i in range(a.steps):
            loss, f, b, o = step()
            rows.append((f + b + o, f, b, o, loss))
            common.log(f"step {i}: {1000 * (f + b + o):7.1f} ms (fwd+loss {1000 * f:6.1f}, bwd {1000 * b:6.1f}, "
                       f"clip+adamw {1000 * o:5.1f}) loss {loss:.4f}")
    med = [round(1000 * statistics.median(r[j] for r in rows), 2) for j in range(4)]
    tokens = a.batch * a.ctx
    out = {"engine": "pytorch-cpu", "bench": "train-step", "model": "brown-llama-teacher architecture (float32)",
           "params": sum(p.numel() for p in plist), "batch": a.batch, "ctx": a.ctx,
           "ms_per_step": med[0], "tokens_per_s": round(tokens / med[0] * 1000, 1),
           "phases_ms": {"fwd_loss": med[1], "bwd": med[2], "clip_adamw": med[3]},
           "ms_per_step_min": round(1000 * min(r[0] for r in rows), 2),
           "loss_first_last": [round(rows[0][4], 4), round(rows[-1][4], 4)], "adamw_foreach": a.foreach,
           "peak_rss_mb": common.peak_rss_mb(), "other_load_cores": other.cores, **env,
           "timing": f"median of {a.steps} steps after {a.warmup} warm-up steps; random token ids"}
    common.log(f"median {med[0]} ms/step, {out['tokens_per_s']} tokens/s, peak RSS {out['peak_rss_mb']} MB, "
               f"other load {other.cores} cores")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
