#!/usr/bin/env python3
"""Data-parallel training over MPI (issue 19), measured on this machine: writes
build/bench/distributed.json and prints three tables (bench/README.md, "Distributed").
  (a) alpha / beta of MPI_Allreduce (ring, 2 ranks; tests/multihost/mpi_allreduce) over sizes, on
      shared memory (plain mpirun), a veth between 2 namespaced hosts, and the veth under tc tbf
      at 1 Gbit/s and 100 Mbit/s: T(G) = 2 alpha + G beta, alpha from the small sizes, beta the
      slope over the large ones;
  (b) `lamina train` of mnist-mlp-wide and lenet-mnist: 2 ranks x 1 thread against 1 rank x 1
      thread with the same global batch, on a fixed subset of MNIST (--samples), on each link;
      throughput (samples/s) min and median over --reps, and the overlap the report measured;
  (c) a projection of scaling efficiency at 8, 64 and 512 ranks from (a) and (b), beside
      Horovod's published 90% (ResNet-101, 512 GPUs).
Needs root (namespaces) and the data-parallel CLI (`lamina train --bucket-mb`) for (b) and the
measured overlap in (c); without it (b) is NOT RUN and (c) brackets the overlap (0 and 1).
  /usr/bin/python3 bench/distributed.py [--build build] [--data data] [--reps 3] [--samples 12800]"""
import argparse
import json
import os
import statistics
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "multihost"))
import netns  # noqa: E402

WORKLOADS = {  # name: spec (batch sizes are the spec's: the global batch)
    "mnist-mlp-wide": os.path.join(ROOT, "bench", "specs", "mnist_mlp_wide.json"),
    "lenet-mnist": os.path.join(ROOT, "examples", "specs", "lenet_mnist.json"),
}
# Links: (name, where: plain mpirun or namespaced hosts, tc tbf rate, largest allreduce measured)
LINKS = [
    ("shm", "shm", None, 16 << 20),
    ("veth", "netns", None, 16 << 20),
    ("tbf-1gbit", "netns", "1gbit", 16 << 20),
    ("tbf-100mbit", "netns", "100mbit", 4 << 20),
]
SIZES = [4, 64, 1 << 10, 16 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20]
RANKS = [8, 64, 512]
SMALL_BUCKET_MB = 0.1
HOROVOD = {"efficiency": 0.90, "model": "ResNet-101", "gpus": 512,
           "source": "Horovod's benchmarks page (horovod/horovod, docs/benchmarks.rst): 128 servers x 4 Pascal GPUs, "
                     "RoCE 25 Gbit/s, tf_cnn_benchmarks at batch 64 per GPU; 90% for Inception V3 and ResNet-101, "
                     "68% for VGG-16"}
FORMULA = ("T_ar(N) = k 2(N-1) alpha + 2(N-1)/N G beta;  "
           "E(N) = T_c / (T_c + T_ar(N) - min(o T_ar(N), T_bwd))")


# ---- (a) alpha / beta -------------------------------------------------------------------------

def fit_alpha_beta(points):
    """points: [(G bytes, T seconds)] of a 2-rank ring, T = 2 alpha + G beta. alpha: half the
    median time of the sizes up to 1 KiB (latency alone); beta: the least-squares slope over the
    sizes from 1 MiB (bandwidth alone; the intercept soaks up tbf's burst and the setup)."""
    small = [t for g, t in points if g <= 1024]
    large = [(g, t) for g, t in points if g >= 1 << 20]
    alpha = statistics.median(small) / 2
    mg = statistics.fmean(g for g, _ in large)
    mt = statistics.fmean(t for _, t in large)
    beta = sum((g - mg) * (t - mt) for g, t in large) / sum((g - mg) ** 2 for g, _ in large)
    return alpha, beta


def measure_links(binary):
    out = {}
    for name, where, rate, largest in LINKS:
        sizes = [s for s in SIZES if s <= largest]
        argv = dict(sizes=sizes, iters=100, warmup=3)
        netns.log(f"(a) allreduce over {name} ...")
        if where == "shm":
            r = run_allreduce(binary, 2, "shm", **argv)
        else:
            with netns.Hosts(2, rate=rate):
                r = run_allreduce(binary, 2, "netns", **argv)
        res = r["results"]
        assert all(x["ok"] for x in res), f"{name}: wrong allreduce sums"
        a_min, b_min = fit_alpha_beta([(x["bytes"], x["min_s"]) for x in res])
        a_med, b_med = fit_alpha_beta([(x["bytes"], x["median_s"]) for x in res])
        out[name] = {"rate": rate, "hosts": r["hosts"], "results": res,
                     "alpha_s": {"min": a_min, "median": a_med}, "beta_s_per_byte": {"min": b_min, "median": b_med}}
        if rate:  # the fitted bandwidth 1 / beta as a fraction of the token bucket's rate
            line = rate_bytes(rate)
            out[name]["line_rate_fraction"] = {"min": 1 / b_min / line, "median": 1 / b_med / line}
    return out


def rate_bytes(rate):
    """tc's 1gbit / 100mbit in bytes per second."""
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if rate.endswith(unit):
            return float(rate[:-len(unit)]) * scale / 8
    return float(rate) / 8


def run_allreduce(binary, n, where, sizes, iters, warmup):
    argv = [binary, "--bytes", ",".join(map(str, sizes)), "--iters", str(iters), "--warmup", str(warmup),
            "--budget", "0.25"]
    res = netns.mpirun(n, argv, where, timeout=600, env=RING_ENV).stdout
    return json.loads(res.strip().splitlines()[-1])


# Shared memory gets the same ring as the namespaced hosts (scripts/netns-mpirun.sh pins it there).
RING_ENV = {"OMPI_MCA_coll_tuned_use_dynamic_rules": "1", "OMPI_MCA_coll_tuned_allreduce_algorithm": "4"}


# ---- (b) training -----------------------------------------------------------------------------

def idx_subset(src, dst, count):
    """The first `count` records of an IDX file (MNIST's layout: magic, dims, then the data)."""
    with open(src, "rb") as f:
        head = f.read(4)
        ndim = head[3]
        dims = list(struct.unpack(">" + "I" * ndim, f.read(4 * ndim)))
        record = 1
        for d in dims[1:]:
            record *= d
        count = min(count, dims[0])
        body = f.read(record * count)
    with open(dst, "wb") as f:
        f.write(head + struct.pack(">" + "I" * ndim, count, *dims[1:]) + body)


def subset_specs(data, samples, test_samples, tmp):
    """Specs of the workloads on the first `samples` training images (a multiple of every batch),
    in tmp; the model, compile and fit parts are the workloads' own."""
    mnist = os.path.join(tmp, "mnist")
    os.makedirs(mnist, exist_ok=True)
    for kind, n in (("train", samples), ("t10k", test_samples)):
        for part in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            idx_subset(os.path.join(data, "mnist", f"{kind}-{part}"), os.path.join(mnist, f"{kind}-{part}"), n)
    specs = {}
    for name, path in WORKLOADS.items():
        with open(path) as f:
            spec = json.load(f)
        spec["data"] = {"name": "mnist", "dir": mnist, "scale": spec["data"].get("scale", 1 / 255)}
        spec["fit"]["epochs"] = 1
        specs[name] = os.path.join(tmp, name + ".json")
        with open(specs[name], "w") as f:
            json.dump(spec, f)
    return specs


def train(lamina, spec, tmp, ranks, where, extra=()):
    report = os.path.join(tmp, "report.json")
    if os.path.exists(report):
        os.remove(report)
    argv = [lamina, "train", spec, "--threads", "1", "--quiet", "--report", report, *extra]
    if ranks == 1:
        netns.run(argv, timeout=900)
    else:
        netns.mpirun(ranks, argv, where, timeout=900)
    with open(report) as f:
        return json.load(f)


def summary(values):
    return {"min": min(values), "median": statistics.median(values), "all": values}


def measure_training(lamina, specs, samples, reps, tmp):
    out = {}
    for name, spec in specs.items():
        with open(spec) as f:
            batch = json.load(f)["fit"]["batch_size"]
        w = out[name] = {"samples": samples, "global_batch": batch, "runs": {}}
        # T_c: one rank's step at the per-rank batch of the 2-rank runs (compute alone).
        configs = [("1 rank", 1, "shm", None, []), ("1 rank, batch/2", 1, "shm", None, ["--batch-size", str(batch // 2)])]
        configs += [(f"2 ranks {link}", 2, where, rate, []) for link, where, rate, _ in LINKS]
        # The default 25 MB bucket holds either model's gradients whole (k = 1), so nothing can
        # overlap backward; small buckets show what overlap does on the veth.
        configs += [(f"2 ranks veth, {SMALL_BUCKET_MB} MB buckets", 2, "netns", None, ["--bucket-mb", str(SMALL_BUCKET_MB)])]
        for label, ranks, where, rate, extra in configs:
            netns.log(f"(b) {name}: {label} x {reps} ...")
            reports = []
            if where == "netns":
                with netns.Hosts(2, rate=rate):
                    reports = [train(lamina, spec, tmp, ranks, where, extra) for _ in range(reps)]
            else:
                reports = [train(lamina, spec, tmp, ranks, where, extra) for _ in range(reps)]
            seconds = [sum(r["epoch_seconds"]) for r in reports]
            run = {"ranks": ranks, "epoch_seconds": summary(seconds),
                   "samples_per_s": summary([samples / s for s in seconds]),
                   "test_accuracy": [r["test"]["accuracy"] for r in reports],
                   "final_loss": [r["history"]["loss"][-1] for r in reports]}
            d = [r["distributed"] for r in reports if "distributed" in r]
            if d:
                run["distributed"] = {k: d[0][k] for k in ("ranks", "backend", "bucket_mb", "global_batch", "buckets",
                                                           "bytes_per_step", "steps") if k in d[0]}
                for k in ("backward_seconds", "allreduce_seconds", "exposed_seconds", "overlap"):
                    if all(k in x for x in d):
                        run["distributed"][k] = summary([x[k] for x in d])
            run["loadavg_1min_after"] = os.getloadavg()[0]  # other processes share the 2 cores
            w["runs"][label] = run
        base = w["runs"]["1 rank"]["samples_per_s"]
        for label, run in w["runs"].items():
            if run["ranks"] == 2:
                run["speedup"] = {"min": run["samples_per_s"]["min"] / base["median"],
                                  "median": run["samples_per_s"]["median"] / base["median"]}
    return out


# ---- (c) projection ---------------------------------------------------------------------------

def project(links, workloads_meta):
    """E(N) per workload and link. T_c, T_bwd and o from the 2-rank runs (medians) when the CLI
    reports them; else T_bwd = 2/3 T_c (backward ~ twice forward) and o bracketed by 0 and 1."""
    out = {}
    for name, meta in workloads_meta.items():
        t_c, t_bwd, k, g = meta["t_c"], meta["t_bwd"], meta["buckets"], meta["grad_bytes"]
        rows = {}
        for link in ("veth", "tbf-1gbit", "tbf-100mbit"):
            alpha = links[link]["alpha_s"]["median"]
            beta = links[link]["beta_s_per_byte"]["median"]
            o_meas = meta["overlap"].get(link)
            row = {}
            for n in RANKS:
                t_ar = k * 2 * (n - 1) * alpha + 2 * (n - 1) / n * g * beta
                e = {}
                for label, o in (("o=0", 0.0), ("o=1", 1.0)) + ((("measured", o_meas),) if o_meas is not None else ()):
                    e[label] = t_c / (t_c + t_ar - min(o * t_ar, t_bwd))
                row[str(n)] = {"t_ar_s": t_ar, "efficiency": e}
            # The step that Horovod's 90% needs at the largest N with nothing hidden: T_c = 9 T_ar.
            need = 9 * row[str(RANKS[-1])]["t_ar_s"]
            rows[link] = {"alpha_s": alpha, "beta_s_per_byte": beta, "overlap": o_meas, "ranks": row,
                          "t_c_for_90_percent_s": need}
        out[name] = {"t_c_s": t_c, "t_bwd_s": t_bwd, "t_bwd_measured": meta["t_bwd_measured"], "buckets": k,
                     "grad_bytes": g, "links": rows}
    return out


def workload_meta(lamina, specs, samples, training, tmp):
    """T_c, T_bwd, k, G and o per workload, from the training runs or, without the data-parallel
    CLI, from 1-rank runs of the current one at the per-rank batch."""
    meta = {}
    for name, spec in specs.items():
        with open(spec) as f:
            s = json.load(f)
        batch = s["fit"]["batch_size"]
        per_rank = batch // 2
        if training:
            w = training[name]
            one = w["runs"]["1 rank, batch/2"]
            steps = w["samples"] // per_rank
            t_c = one["epoch_seconds"]["median"] / steps
            d = w["runs"]["2 ranks veth"].get("distributed", {})
            dsteps = d.get("steps") or steps
            t_bwd = d["backward_seconds"]["median"] / dsteps if "backward_seconds" in d else 2 / 3 * t_c
            overlap = {}
            for link in ("veth", "tbf-1gbit", "tbf-100mbit"):
                dd = w["runs"][f"2 ranks {link}"].get("distributed", {})
                if "overlap" in dd:
                    overlap[link] = dd["overlap"]["median"]
            g = d.get("bytes_per_step")
            k = d.get("buckets", 1)
            measured = "backward_seconds" in d
        else:
            r = train(lamina, spec, tmp, 1, "shm", ["--batch-size", str(per_rank)])
            steps = samples // per_rank
            t_c = sum(r["epoch_seconds"]) / steps
            t_bwd, overlap, g, k, measured = 2 / 3 * t_c, {}, None, 1, False
        if g is None:
            g = 4 * params_of(lamina, spec)
        meta[name] = {"t_c": t_c, "t_bwd": t_bwd, "t_bwd_measured": measured, "buckets": k, "grad_bytes": g,
                      "overlap": overlap, "per_rank_batch": per_rank}
    return meta


def params_of(lamina, spec):
    """Trainable parameters, from `lamina train --epochs 0`'s report ("params")."""
    with tempfile.TemporaryDirectory() as t:
        rep = os.path.join(t, "r.json")
        netns.run([lamina, "train", spec, "--epochs", "0", "--quiet", "--threads", "1", "--report", rep], timeout=300)
        with open(rep) as f:
            return json.load(f)["params"]


# ---- output -----------------------------------------------------------------------------------

def print_tables(result):
    links = result["links"]
    print(f"load average (1 min) before {result['loadavg_1min_before']:.2f}, after {result['loadavg_1min_after']:.2f} "
          f"on {result['machine']}")
    print("\n(a) MPI_Allreduce, 2 ranks, ring: T(G) = 2 alpha + G beta; alpha from G <= 1 KiB, beta the slope over "
          "G >= 1 MiB (fits to the min / median times)")
    print(f"{'link':<13}{'alpha us':>18}{'beta ns/B':>20}{'bandwidth GB/s':>22}{'T(4 MiB) ms':>16}{'of tbf rate':>13}")
    for name, l in links.items():
        a, b = l["alpha_s"], l["beta_s_per_byte"]
        t4 = next((x for x in l["results"] if x["bytes"] == 4 << 20), None)
        print(f"{name:<13}{a['min'] * 1e6:>9.1f} /{a['median'] * 1e6:>7.1f}{b['min'] * 1e9:>11.3f} /{b['median'] * 1e9:>7.3f}"
              f"{1e-9 / b['min']:>13.3f} /{1e-9 / b['median']:>7.3f}"
              f"{(t4['min_s'] * 1e3 if t4 else float('nan')):>8.2f} /{(t4['median_s'] * 1e3 if t4 else float('nan')):>6.2f}"
              + (f"{l['line_rate_fraction']['min'] * 100:>6.0f}% /{l['line_rate_fraction']['median'] * 100:>3.0f}%"
                 if l.get("line_rate_fraction") else ""))
    tr = result.get("training")
    if tr:
        print(f"\n(b) lamina train, 1 epoch of {next(iter(tr.values()))['samples']} MNIST samples, threads 1, "
              f"{result['reps']} reps: samples/s min / median; speedup against 1 rank's median")
        print(f"{'workload':<16}{'run':<30}{'samples/s':>20}{'speedup':>18}{'overlap':>10}{'buckets':>8}{'test acc':>10}")
        for name, w in tr.items():
            for label, run in w["runs"].items():
                sp = run.get("speedup")
                ov = run.get("distributed", {}).get("overlap")
                print(f"{name:<16}{label:<30}{run['samples_per_s']['min']:>10.0f} /{run['samples_per_s']['median']:>8.0f}"
                      + (f"{sp['min']:>9.2f}x /{sp['median']:>5.2f}x" if sp else f"{'':>18}")
                      + (f"{ov['median']:>10.2f}" if ov else f"{'-':>10}")
                      + f"{run.get('distributed', {}).get('buckets', '-'):>8}"
                      + f"{statistics.median(run['test_accuracy']):>10.4f}")
    else:
        print(f"\n(b) training: NOT RUN ({result['training_not_run']})")
    print(f"\n(c) projected scaling efficiency, per-rank batch fixed (weak scaling), alpha / beta from (a) (median fits):")
    print(f"    {FORMULA}")
    print("    T_c: 1 rank's step at the per-rank batch; T_bwd: its backward; k buckets of G gradient bytes in all;"
          " o: overlap measured on 2 ranks")
    for name, p in result["projection"].items():
        src = "measured" if p["t_bwd_measured"] else "assumed 2/3 T_c"
        print(f"  {name}: T_c {p['t_c_s'] * 1e3:.2f} ms, T_bwd {p['t_bwd_s'] * 1e3:.2f} ms ({src}), k {p['buckets']}, "
              f"G {p['grad_bytes'] / 1e6:.2f} MB")
        print(f"    {'link':<13}" + "".join(f"{'N=' + str(n) + ' T_ar ms':>15}{'E (o=0/o=1/meas)':>22}" for n in RANKS)
              + f"{'T_c for 90% at ' + str(RANKS[-1]):>20}")
        for link, l in p["links"].items():
            cells = ""
            for n in RANKS:
                c = l["ranks"][str(n)]
                e = c["efficiency"]
                meas = f"{e['measured'] * 100:.0f}%" if "measured" in e else "-"
                cells += f"{c['t_ar_s'] * 1e3:>15.2f}{e['o=0'] * 100:>10.0f}% /{e['o=1'] * 100:>4.0f}% /{meas:>5}"
            print(f"    {link:<13}{cells}{l['t_c_for_90_percent_s'] * 1e3:>17.0f} ms")
    h = HOROVOD
    print(f"  beside: Horovod {h['efficiency'] * 100:.0f}% at {h['gpus']} GPUs ({h['model']}; {h['source']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--out", default=None, help="default: BUILD/bench/distributed.json")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--samples", type=int, default=12800, help="training images per epoch (a multiple of 256)")
    ap.add_argument("--test-samples", type=int, default=2000)
    ap.add_argument("--skip-training", action="store_true", help="(a) and (c) only")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    out_path = a.out or os.path.join(build, "bench", "distributed.json")
    binary = os.path.join(build, "tests", "multihost", "mpi_allreduce")
    lamina = os.path.join(build, "lamina")
    for p in (binary, lamina):
        if not os.path.exists(p):
            sys.exit(f"bench/distributed.py: no {p}: build first (make build)")
    if not os.path.exists(os.path.join(a.data, "mnist", "train-images-idx3-ubyte")):
        sys.exit(f"bench/distributed.py: no MNIST in {a.data}/mnist: scripts/setup.sh --data && scripts/fetch-data.sh mnist")
    if a.samples % 256:
        sys.exit("bench/distributed.py: --samples must be a multiple of 256 (every batch, split over 2 ranks)")
    if os.geteuid() != 0:
        print("bench/distributed.py: skipped: the namespaced hosts need root (ip netns); run make bench as root")
        return 0
    if os.getloadavg()[0] > 0.5:
        print(f"bench/distributed.py: WARNING: load average {os.getloadavg()[0]:.2f} before the start: two ranks on "
              "two cores lose a core to any other process, so the speedups below understate")

    result = {"machine": f"{os.cpu_count()} cores", "reps": a.reps, "formula": FORMULA, "horovod": HOROVOD,
              "loadavg_1min_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="lamina-bench-dist-") as tmp:
        specs = subset_specs(os.path.abspath(a.data), a.samples, a.test_samples, tmp)
        result["links"] = measure_links(binary)
        has = netns.lamina_has_distributed(lamina)
        training = None
        if has and not a.skip_training:
            training = measure_training(lamina, specs, a.samples, a.reps, tmp)
            result["training"] = training
        else:
            result["training_not_run"] = ("--skip-training" if a.skip_training
                                          else f"{lamina} train --help has no --bucket-mb yet")
        meta = workload_meta(lamina, specs, a.samples, training, tmp)
        result["projection"] = project(result["links"], meta)
    result["loadavg_1min_after"] = os.getloadavg()[0]
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    print_tables(result)
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
