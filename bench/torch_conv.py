"""torch_conv.py — PyTorch's side of bench_conv.lua: the same Conv2d, timed the same way.

Usage: torch_conv.py THREADS WARMUP REPS B CIN COUT H W K PAD
Prints one line per case, "name ms", the median over REPS after WARMUP calls:
  forward     conv2d under no_grad
  fwd+bwd     conv2d forward, then backward of a fixed seed gradient into x, weight and bias
  sgemm       torch.mm of the forward's equivalent product (COUT x CIN K K) . (CIN K K x B H W)
and "backend ..." lines saying what PyTorch computes with.
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
    threads, warmup, reps, B, cin, cout, H, W, k, pad = (int(a) for a in sys.argv[1:11])
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    print("backend torch %s, %d threads, mkldnn %s" % (torch.__version__, torch.get_num_threads(),
                                                       torch.backends.mkldnn.is_available()))
    x = torch.randn(B, cin, H, W, requires_grad=True)
    conv = torch.nn.Conv2d(cin, cout, k, padding=pad)
    seed = torch.randn_like(conv(x))

    def forward():
        with torch.no_grad():
            conv(x)

    def step():
        y = conv(x)
        y.backward(seed)
        x.grad = None
        conv.weight.grad = None
        conv.bias.grad = None

    oh, ow = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    a = torch.randn(cout, cin * k * k)
    b = torch.randn(cin * k * k, B * oh * ow)

    print("forward %.4f" % timed(forward, warmup, reps))
    print("fwd+bwd %.4f" % timed(step, warmup, reps))
    print("sgemm %.4f" % timed(lambda: torch.mm(a, b), warmup, reps))


if __name__ == "__main__":
    main()
