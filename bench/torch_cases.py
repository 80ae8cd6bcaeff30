"""bench/torch_cases.py - the PyTorch side of bench/cases.lua, the same models and
steps (forward + backward + optimizer step), same thread count.  Prints one line:
ms=<median ms per step> flops=0 rss_kb=<peak resident KB> steps=<timed steps>

    /usr/bin/python3 bench/torch_cases.py CASE [--quick]
"""
import os
import resource
import sys
import time

import torch
import torch.nn as nn

case = sys.argv[1]
quick = "--quick" in sys.argv[2:]
threads = int(os.environ.get("GRADLAB_THREADS", "2"))
torch.set_num_threads(threads)
torch.manual_seed(0)


def q(full, small):
    return small if quick else full


def case_a():
    din, hidden, batch = q(784, 32), q(1024, 64), q(128, 8)
    model = nn.Sequential(nn.Linear(din, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(batch, din), torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def deep_tanh(with_monitor):
    depth = q(32, 4)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 64), torch.randn(32, 64)
    params = list(model.parameters())
    norms = []

    def step():
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if with_monitor:   # what a user writes: a Python-side loop over per-parameter norms
            norms.append([p.grad.norm().item() for p in params])
        opt.step()
    return step


def case_d():
    T, batch, inp, hidden = q(100, 5), q(32, 4), 32, q(128, 16)
    lstm, head = nn.LSTM(inp, hidden), nn.Linear(hidden, 1)
    opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=0.01)
    x, y = torch.randn(T, batch, inp), torch.randn(batch, 1)

    def step():
        out, _ = lstm(x)
        loss = ((head(out[-1]) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def case_e():
    batch, size = q(32, 2), q(32, 8)

    class Residual(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return x + self.block(x)

    def block(c):
        return Residual(nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                      nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)))
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        block(16), nn.ReLU(), block(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        block(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def case_f():
    blocks, d, heads, seq, batch = q(6, 2), q(128, 32), 4, q(64, 8), q(16, 2)
    layer = lambda: nn.TransformerEncoderLayer(d_model=d, nhead=heads, dim_feedforward=4 * d, dropout=0.0,
                                               activation="gelu", batch_first=True, norm_first=True)
    model = nn.Sequential(*[layer() for _ in range(blocks)])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, seq, d)

    def step():
        loss = (model(x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


builders = {"a": case_a, "b": lambda: deep_tanh(False), "c": lambda: deep_tanh(True), "d": case_d,
            "e": case_e, "f": case_f}
if case not in builders:
    sys.stderr.write("torch_cases.py: unknown case %r\n" % case)
    sys.exit(2)
step = builders[case]()
for _ in range(q(5, 1)):
    step()
reps = q(200 if case in ("b", "c") else 30, 2)
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def blas_core():
    """The OpenBLAS kernels PyTorch's matrix products run on (the library is already loaded)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


print("ms=%.4f flops=0 rss_kb=%d steps=%d core=%s" % (times[(len(times) - 1) // 2], rss, reps, blas_core()))
