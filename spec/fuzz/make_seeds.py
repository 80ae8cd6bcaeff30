#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into spec/fuzz/corpus/<target>/.

Run from the repository root after `make`:  /usr/bin/python3 spec/fuzz/make_seeds.py build/gradlab
Seeds are small (libFuzzer's default max_len follows the largest seed) and
cover each format's branches: dtypes, byte orders, Fortran order, versions,
0-d and empty arrays, stored and deflated zip members, zip comments, CSV
separators, headers, and a real monitor CSV from a short training.  Crash
reproducers found later are added next to these by hand (never regenerated)."""
import io, os, subprocess, sys, zipfile
import numpy as np

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
program = sys.argv[1] if len(sys.argv) > 1 else "build/gradlab"

def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)

def npy(array, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()

a = np.arange(6, dtype=np.float32).reshape(2, 3)
put("npy", "f4_2x3.npy", npy(a))
put("npy", "f8_fortran.npy", npy(np.asfortranarray(a.astype(np.float64))))
put("npy", "i4.npy", npy(np.array([-1, 2, 3], dtype=np.int32)))
put("npy", "i8_big.npy", npy(np.array([[1, -2], [3, 4]], dtype=">i8")))
put("npy", "u1.npy", npy(np.array([0, 255, 7], dtype=np.uint8)))
put("npy", "bool.npy", npy(np.array([True, False, True])))
put("npy", "f2.npy", npy(np.array([0.5, -2.0, np.inf, np.nan], dtype=np.float16)))
put("npy", "f4_big.npy", npy(np.array([1.5, -0.25], dtype=">f4")))
put("npy", "scalar.npy", npy(np.array(3.25, dtype=np.float32)))
put("npy", "empty_0x3.npy", npy(np.zeros((0, 3), dtype=np.float32)))
put("npy", "v2_3d.npy", npy(np.ones((2, 1, 2), dtype=np.float32), version=(2, 0)))
put("npy", "v3_5d.npy", npy(np.zeros((1, 2, 1, 2, 1), dtype=np.float32), version=(3, 0)))
put("npy", "u2_fortran_3d.npy", npy(np.asfortranarray(np.arange(12, dtype=np.uint16).reshape(2, 3, 2))))

def npz(arrays, compress=False, comment=b""):
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    if comment:
        # Rewrite with a comment in the end record.
        src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info))
            dst.comment = comment
    return buf.getvalue()

put("npz", "two.npz", npz({"weight": a, "bias": np.array([1, 2], dtype=np.float32)}))
put("npz", "empty.npz", npz({}))
put("npz", "mixed_dtypes.npz", npz({"i": np.array([1, 2], dtype=np.int64), "s": np.array(1.0)}))
put("npz", "deflate.npz", npz({"x": np.zeros(8, dtype=np.float32)}, compress=True))
put("npz", "comment.npz", npz({"x": np.ones(2, dtype=np.float32)}, comment=b"gradlab seed"))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:   # zip64 extra fields, as numpy writes big members
    with z.open("big.npy", "w", force_zip64=True) as f:
        f.write(npy(np.ones(3, dtype=np.float32)))
put("npz", "zip64.npz", buf.getvalue())

# CSV: the first byte's low bit is the header flag, the rest is the file.
put("csv", "header.csv", b"\x01a,b,c\n1,2,3\n4.5,-6e-1,0x10\n")
put("csv", "plain.csv", b"\x001;2;3\r\n4;5;6\r\n")
put("csv", "tabs_blank.csv", b"\x00 1\t2 \n\n  \n3\t4\n")
put("csv", "special.csv", b"\x00nan,inf,-inf,+1.5,1e308,1e-320\n")
put("csv", "bom.csv", b"\x00\xef\xbb\xbf7,8\n9,10")
put("csv", "ragged.csv", b"\x001,2\n3\n")
put("csv", "bad_cell.csv", b"\x001,x\n")

# A real monitor CSV, written by mon:to_csv after three steps of training.
out = os.path.join(root, "monitor_csv")
os.makedirs(out, exist_ok=True)
script = """
gl.manual_seed(1)
local model = gl.nn.Sequential{gl.nn.Linear(3, 4), gl.nn.Tanh(), gl.nn.Linear(4, 2)}
local opt = gl.optim.SGD(model:parameters(), {lr = 0.1})
local mon = gl.monitor(model)
local x, y = gl.randn{5, 3}, gl.tensor{1, 2, 1, 2, 2}
for step = 1, 3 do
  opt:zero_grad()
  local loss = gl.loss.cross_entropy(model(x), y)
  loss:backward()
  gl.optim.clip_grad_norm(model:parameters(), 0.5)
  mon:record(step, {loss = loss:item()})
  opt:step()
end
mon:to_csv(arg[1])
"""
path = os.path.join(out, "train3.csv")
with open("/tmp/gradlab_seed.lua", "w") as f:
    f.write(script)
subprocess.run([program, "/tmp/gradlab_seed.lua", path], check=True)
os.remove("/tmp/gradlab_seed.lua")
put("monitor_csv", "minimal.csv", b"step,kind,name,loss\n1,step,,0.5\n2,step,,nan\n")
put("monitor_csv", "specials.csv",
    b"step,kind,name,grad_norm,loss,clip_pre,clip_post\n"
    b"1,param,w,inf,,,\n1,step,,1e30,5,1\n2,param,w,-inf,,,\n2,step,,-1,,\n")
