"""Evaluation throughput of the teacher (float32) under the fixture perplexity protocol, in plain PyTorch.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 -B bench/peers/eval.py [IDS.i32] [--batch 8]

IDS.i32: raw little-endian int32 token ids (the tokenized text; Python here has no tokenizer, so the
caller tokenizes). Without it the 64 `logits_input_ids` of the teacher's reference.json are repeated
64 times (4,096 ids, 16 windows) as a smoke test; its ppl means nothing.
Protocol: non-overlapping 256-token windows (incomplete tail dropped); in each window predict tokens
1..255 from their prefix; nll = mean natural-log NLL, ppl = exp(nll), top1 = argmax accuracy.
"""
import argparse, json, math, os, sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

THREADS = common.threads_from_argv("2x2")
import numpy as np
import torch


def load_ids(path):
    if path:
        return torch.from_numpy(np.fromfile(path, dtype="<i4").astype(np.int64)), path
    ref = json.load(open(os.path.join(common.TEACHER, "reference.json")))
    return torch.tensor(ref["logits_input_ids"] * 64, dtype=torch.int64), "demo: logits_input_ids x64"


@torch.no_grad()
def evaluate(model, ids, window, batch):
    """Returns (sum nll, correct top-1, predicted tokens, windows) in float64/int."""
    n = ids.numel() // window
    wins = ids[: n * window].view(n, window)
    nll, correct = 0.0, 0
    for i in range(0, n, batch):
        x = wins[i:i + batch]                                        # (b, window)
        logits = model(x)[:, :-1]                                    # (b, window-1, V)
        y = x[:, 1:]
        logp = logits.log_softmax(-1)
        nll -= logp.gather(-1, y.unsqueeze(-1)).double().sum().item()
        correct += int((logits.argmax(-1) == y).sum())
    return nll, correct, n * (window - 1), n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="?", help="raw little-endian int32 token-id file")
    ap.add_argument("--batch", type=int, default=8, help="windows per forward pass")
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--threads", default="2x2", help="TxB: T torch threads x B OpenBLAS threads (default 2x2)")
    a = ap.parse_args()
    torch.set_num_threads(THREADS[0])
    env = common.env_facts(THREADS)
    cfg, weights = common.load_llama()
    model = common.Llama(cfg, weights)
    diff = common.check_teacher(model)
    common.log(f"teacher logits vs Hugging Face reference: max abs diff {diff:.2e}")
    ids, source = load_ids(a.ids)
    if int(ids.min()) < 0 or int(ids.max()) >= cfg["vocab_size"]:
        sys.exit(f"{source}: token ids outside [0, {cfg['vocab_size']})")
    evaluate(model, ids[: a.window * min(a.batch, 2)], a.window, a.batch)   # warm-up
    with common.OtherLoad() as other:
        t = common.time.perf_counter()
        nll, correct, tokens, windows = evaluate(model, ids, a.window, a.batch)
        seconds = common.time.perf_counter() - t
    out = {"engine": "pytorch-cpu", "bench": "eval", "ids": source, "ids_total": ids.numel(), "windows": windows,
           "window": a.window, "batch": a.batch, "tokens": tokens, "nll": nll / tokens, "ppl": math.exp(nll / tokens),
           "top1": correct / tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
           "processed_tokens_per_s": round(windows * a.window / seconds, 1), "teacher_logits_max_abs_diff": diff,
           "peak_rss_mb": common.peak_rss_mb(), "other_load_cores": other.cores, **env}
    common.log(f"{source}: {windows} windows, {tokens} tokens, ppl {out['ppl']:.4f}, nll {out['nll']:.6f}, "
               f"top1 {out['top1']:.4f}, {seconds:.2f} s, {out['tokens_per_s']} tokens/s (other load {other.cores} cores)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
