"""torch_transformer.py — the PyTorch twin of bench_transformer.lua.

6 x nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=512, dropout=0,
activation="gelu", batch_first=True, norm_first=True) on (16, 64, 128): one step is
forward, MSE loss against a fixed target, backward, SGD(lr=0.01) step, grads set to None.
Prints one line per timed step, "ms <wall> <cpu>" (CPU time of the process, all threads),
then "threads <n>" and the torch version,
so the Lua side can take the medians itself.

usage: torch_transformer.py --threads N --steps S --warmup W [--layers L --d D --heads H --seq T --batch B]
The caller sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / OPENBLAS_CORETYPE in the environment.
"""
import argparse
import sys
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    layers = [torch.nn.TransformerEncoderLayer(d_model=args.d, nhead=args.heads, dim_feedforward=4 * args.d,
                                               dropout=0.0, activation="gelu", batch_first=True,
                                               norm_first=True)
              for _ in range(args.layers)]
    model = torch.nn.Sequential(*layers)
    model.train()
    x = torch.randn(args.batch, args.seq, args.d)
    target = torch.randn(args.batch, args.seq, args.d)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        y = model(x)
        loss = torch.nn.functional.mse_loss(y, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    for _ in range(args.steps):
        start, cpu = time.perf_counter(), time.process_time()
        step()
        print("ms %.6f %.6f" % ((time.perf_counter() - start) * 1e3, (time.process_time() - cpu) * 1e3))
    print("threads %d" % torch.get_num_threads())
    print("torch %s" % torch.__version__)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
