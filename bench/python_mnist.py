#!/usr/bin/env python3
"""The course's MNIST program in Lamina-Python, beside the same program in PyTorch (Debian's
python3-torch) and in Lamina's C++ (bench_lamina), in one run, on one thread each.

    python3 bench/python_mnist.py [--build build] [--data data] [--epochs 3] [--reps 2]
                                  [--peers lamina-python,pytorch,lamina-cpp] [--out build/bench/python_mnist.json]

The program (issue 18; examples/python/mnist_mlp.py): MNIST / 255.0, Flatten, Dense(128, relu),
Dense(10) logits, Adam (lr 1e-3, Keras' epsilon 1e-7), sparse categorical cross-entropy from
logits, batch 32 (Keras' default), a reshuffle every epoch, glorot_uniform kernels and zero biases.

Peers, each its own process started with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = 1:
  lamina-python            the program as the course writes it (metrics=['accuracy'], x / 255.0
                           a float64 array that fit converts to float32 once), PYTHONPATH=<build>/python
  lamina-python-nometrics  the same without metrics, as bench_lamina trains (to compare with it)
  pytorch                  idiomatic PyTorch: a torch.randperm per epoch and index batches
                           (x[idx]) from float32 tensors, zero_grad(set_to_none=True), forward,
                           CrossEntropyLoss, backward, Adam.step, loss.item() and the correct count
                           each step (the running loss and accuracy Keras' progress bar shows);
                           torch.set_num_threads(1)
  pytorch-dataloader       the same with DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
                           (slower: it collates 32 single samples per batch)
  pytorch-default-malloc   pytorch without the malloc thresholds below (MALLOC_ENV)
  lamina-cpp               <build>/bench/bench_lamina --workload mnist-mlp --threads 1 --no-predict
                           (bench/lamina_train.cpp: the same model, no training metrics, bytes / 255
                           converted per batch)
The torch peers get OPENBLAS_CORETYPE=SkylakeX, as bench_compare gives libtorch (its BLAS calls go
through OpenBLAS; the environment's Haswell default halves them), and every peer glibc malloc
thresholds that keep freed blocks in the process (MALLOC_ENV: without them PyTorch is 5x slower here).

Runs alternate peer by peer, --reps times; before each, as bench_compare does, the script waits
(up to --max-wait seconds in all) for other processes to leave the CPU, and it records the cores
they kept busy during each run. s/epoch min and median are over every epoch of every run (the
first includes warm-up). Ratios: pytorch median / lamina-python median ("speedup", target >= 3)
and lamina-python median / lamina-cpp median ("python_overhead", target <= 1.10).
Writes --out (JSON) and prints a table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PEERS = ("lamina-python", "lamina-python-nometrics", "pytorch", "pytorch-dataloader", "pytorch-default-malloc",
         "lamina-cpp")
# glibc's malloc hands blocks over 128 KiB back to the kernel (munmap, heap trimming) as soon as
# they are freed, and PyTorch allocates and frees its temporaries (Adam's on the 784x128 kernel:
# 392 KiB each) every step, so every step faults fresh pages in. On this machine (a Firecracker
# VM with free-page reporting) a page fault is expensive: `a.sqrt() / 0.5` on a 784x128 tensor
# takes 5.9 ms instead of 0.08 ms, and a PyTorch epoch 21 s instead of 4. These thresholds keep
# the blocks in the process; every peer gets them (Lamina reuses its own buffers and does not
# care), and pytorch-default-malloc shows PyTorch without them.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
DEFAULT_PEERS = "lamina-python,pytorch,lamina-cpp"
SEED = 2  # bench_lamina's mnist-mlp seed


# --- the workers: each runs in its own process and prints one JSON line -----------------------------

def worker_lamina(args, metrics):
    import lamina as tf
    from lamina.keras import layers

    timer = EpochTimer(tf.keras.callbacks.Callback)
    t0 = time.perf_counter()
    mnist = tf.keras.datasets.mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=os.path.join(args.data, "mnist"))
    x_train, x_test = x_train / 255.0, x_test / 255.0
    load_s = time.perf_counter() - t0
    tf.keras.utils.set_random_seed(SEED)
    model = tf.keras.Sequential([
        layers.Flatten(input_shape=(28, 28)),
        layers.Dense(128, activation='relu'),
        layers.Dense(10)
    ])
    model.compile(optimizer='adam',
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'] if metrics else None)
    t_fit = time.perf_counter()
    timer.fit_start = t_fit
    model.fit(x_train, y_train, epochs=args.epochs, verbose=0, callbacks=[timer.callback])
    fit_s = time.perf_counter() - t_fit
    result = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    test_accuracy = result.get("accuracy")
    if test_accuracy is None:  # no metrics: the accuracy from predict
        test_accuracy = float((model.predict(x_test, batch_size=1000).argmax(1) == y_test).mean())
    return {"epoch_seconds": timer.seconds, "epoch_cpu_seconds": timer.cpu_seconds, "test_accuracy": test_accuracy,
            "load_seconds": load_s, "fit_seconds": fit_s, "fit_setup_seconds": timer.setup_seconds}


class EpochTimer:
    """Wall seconds per epoch from on_epoch_begin to on_epoch_end (epoch-level Python callbacks
    cost no per-batch GIL round trip), and fit's time before the first epoch (the conversion of
    x to float32 and the dataset's construction)."""

    def __init__(self, base):
        timer = self
        self.seconds, self.cpu_seconds, self.fit_start, self.setup_seconds = [], [], None, None

        class Callback(base):
            def on_epoch_begin(self, epoch, logs=None):
                timer.t0, timer.c0 = time.perf_counter(), time.process_time()
                if timer.setup_seconds is None:
                    timer.setup_seconds = timer.t0 - timer.fit_start

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds.append(time.perf_counter() - timer.t0)
                timer.cpu_seconds.append(time.process_time() - timer.c0)

        self.callback = Callback()


def load_mnist_arrays(data):
    """MNIST as uint8 arrays without Lamina (the torch worker must not import it)."""
    import gzip
    import numpy as np

    def read(name):
        for path, opener in ((os.path.join(data, "mnist", name), open),
                             (os.path.join(data, "mnist", name + ".gz"), gzip.open)):
            if os.path.exists(path):
                with opener(path, "rb") as f:
                    raw = f.read()
                ndim = raw[3]
                shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
        raise FileNotFoundError(f"{data}/mnist/{name}: not found (scripts/fetch-data.sh mnist)")

    return ((read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")),
            (read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")))


def worker_torch(args, dataloader):
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_mnist_arrays(args.data)
    x = torch.from_numpy(x_train / 255.0).float()
    y = torch.from_numpy(y_train.astype("int64"))
    xt = torch.from_numpy(x_test / 255.0).float()
    yt = torch.from_numpy(y_test.astype("int64"))
    load_s = time.perf_counter() - t0
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    for m in model:
        if isinstance(m, nn.Linear):  # Keras' glorot_uniform kernels and zero biases
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    n, batch = len(x), 32

    def batches():
        if dataloader:
            yield from loader
        else:
            perm = torch.randperm(n)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                yield x[idx], y[idx]

    if dataloader:
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    seconds, cpu_seconds = [], []
    t_fit = time.perf_counter()
    for _ in range(args.epochs):
        e0, c0 = time.perf_counter(), time.process_time()
        model.train()
        total, correct, seen = 0.0, 0, 0
        for xb, yb in batches():
            optimizer.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
            seen += len(yb)
        seconds.append(time.perf_counter() - e0)
        cpu_seconds.append(time.process_time() - c0)
    fit_s = time.perf_counter() - t_fit
    model.eval()
    with torch.no_grad():
        test_accuracy = (model(xt).argmax(1) == yt).float().mean().item()
    return {"epoch_seconds": seconds, "epoch_cpu_seconds": cpu_seconds, "test_accuracy": test_accuracy, "load_seconds": load_s, "fit_seconds": fit_s,
            "train_accuracy": correct / seen, "train_loss": total / seen}


def run_worker(args):
    if args.worker.startswith("lamina-python"):
        out = worker_lamina(args, metrics=args.worker == "lamina-python")
    else:
        out = worker_torch(args, dataloader=args.worker == "pytorch-dataloader")
    import resource
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out), flush=True)


# --- the driver ---------------------------------------------------------------------------------------

def cpu_sample():
    """(busy CPU seconds of all processes, wall seconds, our finished children's CPU seconds)."""
    import resource
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:9]
    user, nice, system, idle, iowait, irq, softirq, steal = (float(v) for v in fields)
    hz = os.sysconf("SC_CLK_TCK")
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((user + nice + system + irq + softirq + steal) / hz, time.monotonic(), c.ru_utime + c.ru_stime)


def other_busy_cores(a, b):
    wall = b[1] - a[1]
    return max(0.0, (b[0] - a[0]) - (b[2] - a[2])) / wall if wall > 0 else 0.0


def wait_for_quiet(budget):
    """bench_compare's rule: wait while other processes keep more than 0.3 cores busy, up to
    budget[0] seconds in all. Returns the busy cores last seen."""
    while True:
        a = cpu_sample()
        time.sleep(0.3)
        busy = other_busy_cores(a, cpu_sample())
        if busy < 0.3 or budget[0] <= 0:
            return busy
        print(f"python_mnist: other processes keep {busy:.1f} cores busy; waiting ({budget[0]:.0f} s left to wait)",
              file=sys.stderr, flush=True)
        time.sleep(2)
        budget[0] -= 2.3


def preflight(args, peers):
    """Says what is missing before any run, rather than after minutes of the others."""
    import glob
    problems = []
    if any(s.startswith("lamina-python") for s in peers) and not glob.glob(
            os.path.join(args.build, "python", "lamina", "_lamina*.so")):
        problems.append(f"{args.build}/python/lamina has no _lamina extension (the Python package builds when "
                        "pybind11-dev and python3-dev are installed)")
    if any(s.startswith("pytorch") for s in peers):
        r = subprocess.run([sys.executable, "-c", "import torch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            problems.append(f"{sys.executable} cannot import torch (scripts/setup.sh --dev installs python3-torch)")
    if "lamina-cpp" in peers and not os.access(os.path.join(args.build, "bench", "bench_lamina"), os.X_OK):
        problems.append(f"{args.build}/bench/bench_lamina not found (configure with -DLAMINA_BUILD_BENCH=ON and build)")
    if not os.path.isdir(os.path.join(args.data, "mnist")):
        problems.append(f"{args.data}/mnist not found (scripts/fetch-data.sh mnist)")
    if problems:
        raise SystemExit("python_mnist: " + "; ".join(problems))


def peer_command(args, peer):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    for k in MALLOC_ENV:
        env.pop(k, None)
    if peer != "pytorch-default-malloc":
        env.update(MALLOC_ENV)
    if peer.startswith("pytorch"):
        env["OPENBLAS_CORETYPE"] = "SkylakeX"
    if peer == "lamina-cpp":
        exe = os.path.join(args.build, "bench", "bench_lamina")
        return [exe, "--workload", "mnist-mlp", "--threads", "1", "--epochs", str(args.epochs), "--data", args.data,
                "--no-predict"], env
    if peer == "pytorch-default-malloc":
        peer = "pytorch"
    if peer.startswith("lamina-python"):
        env["PYTHONPATH"] = os.path.join(os.path.abspath(args.build), "python") + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [sys.executable, os.path.abspath(__file__), "--worker", peer, "--epochs", str(args.epochs), "--data",
            args.data], env


def run_peer(args, peer, budget):
    busy_before = wait_for_quiet(budget)
    cmd, env = peer_command(args, peer)
    before = cpu_sample()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    busy = other_busy_cores(before, cpu_sample())
    if r.returncode != 0:
        raise SystemExit(f"python_mnist: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
    out = json.loads(line)
    keep = ("epoch_seconds", "test_accuracy", "peak_rss_mb", "load_seconds", "fit_seconds", "fit_setup_seconds",
            "train_seconds", "epoch_cpu_seconds")
    out = {k: out[k] for k in keep if k in out}
    out["other_busy_cores_before"] = round(busy_before, 2)
    out["other_busy_cores"] = round(busy, 2)
    return out


def summarize(runs):
    epochs = [s for r in runs for s in r["epoch_seconds"]]
    cpu = [s for r in runs for s in r.get("epoch_cpu_seconds", [])]
    return {"s_per_epoch_min": min(epochs), "s_per_epoch_median": statistics.median(epochs),
            "cpu_s_per_epoch_min": min(cpu) if cpu else None, "cpu_s_per_epoch_median": statistics.median(cpu) if cpu else None,
            "test_accuracy": statistics.median(r["test_accuracy"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "other_busy_cores_max": max(r["other_busy_cores"] for r in runs), "runs": runs}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default="build", help="the Lamina build directory (python/, bench/bench_lamina)")
    p.add_argument("--data", default="data", help="the directory holding mnist/ (scripts/fetch-data.sh mnist)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--peers", default=DEFAULT_PEERS, help="comma-separated, from: " + ", ".join(PEERS))
    p.add_argument("--out", default=None, help="JSON output (default <build>/bench/python_mnist.json)")
    p.add_argument("--max-wait", type=float, default=120)
    p.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.epochs < 1 or args.reps < 1:
        p.error("--epochs and --reps must be positive")
    if args.worker:
        return run_worker(args)

    peers = [s for s in args.peers.split(",") if s]
    for s in peers:
        if s not in PEERS:
            p.error(f"unknown peer '{s}' (known: {', '.join(PEERS)})")
    preflight(args, peers)
    out_path = args.out or os.path.join(args.build, "bench", "python_mnist.json")
    budget = [args.max_wait]
    runs = {s: [] for s in peers}
    for rep in range(args.reps):
        for s in peers if rep % 2 == 0 else reversed(peers):  # alternate the order: no peer always first
            print(f"python_mnist: {s}, run {rep + 1}/{args.reps}, {args.epochs} epochs", file=sys.stderr, flush=True)
            runs[s].append(run_peer(args, s, budget))

    result = {"workload": "mnist-mlp (the course's MNIST program)", "batch": 32, "threads": 1, "epochs": args.epochs,
              "reps": args.reps, "peers": {s: summarize(r) for s, r in runs.items()},
              "conditions": {"malloc_env": MALLOC_ENV, "load_average_after": list(os.getloadavg()),
                             "python": sys.version.split()[0]}}
    med = {s: v["s_per_epoch_median"] for s, v in result["peers"].items()}
    cpu = {s: v["cpu_s_per_epoch_median"] for s, v in result["peers"].items()}
    if "lamina-python" in med and "pytorch" in med:
        result["speedup_vs_pytorch"] = med["pytorch"] / med["lamina-python"]
        result["cpu_speedup_vs_pytorch"] = cpu["pytorch"] / cpu["lamina-python"]
    if "lamina-python" in med and "pytorch-dataloader" in med:
        result["speedup_vs_pytorch_dataloader"] = med["pytorch-dataloader"] / med["lamina-python"]
    if "lamina-python" in med and "lamina-cpp" in med:
        result["python_vs_cpp"] = med["lamina-python"] / med["lamina-cpp"]
        result["cpu_python_vs_cpp"] = cpu["lamina-python"] / cpu["lamina-cpp"]
    if "lamina-python-nometrics" in med and "lamina-cpp" in med:
        result["python_nometrics_vs_cpp"] = med["lamina-python-nometrics"] / med["lamina-cpp"]
        result["cpu_python_nometrics_vs_cpp"] = cpu["lamina-python-nometrics"] / cpu["lamina-cpp"]
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    print(f"\nMNIST program, batch 32, 1 thread, {args.epochs} epochs x {args.reps} runs per peer ({out_path})")
    print(f"{'peer':<26}{'s/epoch min':>12}{'median':>8}{'CPU s min':>10}{'median':>8}{'test acc':>10}{'RSS MB':>8}"
          f"{'busy':>6}")
    for s, v in result["peers"].items():
        print(f"{s:<26}{v['s_per_epoch_min']:>12.3f}{v['s_per_epoch_median']:>8.3f}{v['cpu_s_per_epoch_min']:>10.3f}"
              f"{v['cpu_s_per_epoch_median']:>8.3f}{v['test_accuracy']:>10.4f}{v['peak_rss_mb']:>8.0f}"
              f"{v['other_busy_cores_max']:>6.1f}")
    if "speedup_vs_pytorch" in result:
        print(f"Lamina-Python vs PyTorch: {result['speedup_vs_pytorch']:.2f}x faster by median wall s/epoch, "
              f"{result['cpu_speedup_vs_pytorch']:.2f}x in CPU s (target >= 3x)")
    if "speedup_vs_pytorch_dataloader" in result:
        print(f"Lamina-Python vs PyTorch with DataLoader: {result['speedup_vs_pytorch_dataloader']:.2f}x faster")
    if "python_vs_cpp" in result:
        print(f"Lamina-Python / Lamina C++ per epoch: {result['python_vs_cpp']:.3f} by median wall s, "
              f"{result['cpu_python_vs_cpp']:.3f} in CPU s (target <= 1.10)")
    if "python_nometrics_vs_cpp" in result:
        print(f"Lamina-Python without metrics / Lamina C++: {result['python_nometrics_vs_cpp']:.3f} wall, "
              f"{result['cpu_python_nometrics_vs_cpp']:.3f} CPU")
    busy = max(v["other_busy_cores_max"] for v in result["peers"].values())
    if busy > 0.5:
        print(f"warning: other processes kept up to {busy:.1f} cores busy during a run; the timings are noisy")


if __name__ == "__main__":
    main()
