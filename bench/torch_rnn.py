"""torch_rnn.py — PyTorch's side of bench_rnn.lua: the same recurrent layers, timed the same way.

Usage: torch_rnn.py THREADS WARMUP REPS T B IN H KIND...   (KIND: lstm, gru, rnn)
Prints, per kind, "KIND forward MS" (under no_grad) and "KIND fwd+bwd MS" (forward with autograd,
then backward of a fixed seed gradient on the outputs into x and every parameter), each the
median over REPS after WARMUP calls; and a "backend ..." line saying what PyTorch computes with.
"""
import os
import sys
import time


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return median(times)


def main():
    threads, warmup, reps, T, B, n_in, H = (int(a) for a in sys.argv[1:8])
    kinds = sys.argv[8:]
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))   # loads the BLAS library, named below
    with open("/proc/self/maps") as maps:
        blas = sorted({line.split()[-1] for line in maps if "blas" in line and ".so" in line})
    print("backend torch %s, %d threads, BLAS %s" % (torch.__version__, torch.get_num_threads(),
                                                    os.path.basename(blas[-1]) if blas else "?"))
    x = torch.randn(T, B, n_in, requires_grad=True)
    seed = torch.randn(T, B, H)
    for kind in kinds:
        layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](n_in, H)

        def forward():
            with torch.no_grad():
                layer(x)

        def step():
            y, _ = layer(x)
            y.backward(seed)
            x.grad = None
            for p in layer.parameters():
                p.grad = None

        print("%s forward %.4f" % (kind, timed(forward, warmup, reps)))
        print("%s fwd+bwd %.4f" % (kind, timed(step, warmup, reps)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
