// mpi_allreduce: raw MPI_Allreduce (float sum) of G bytes, k times, timed; no Lamina. The wire
// check of tests/multihost/test_multihost.py and the alpha/beta fit of bench/distributed.py run
// it under mpirun (plain, or scripts/netns-mpirun.sh across namespaced hosts).
//   mpirun -np N mpi_allreduce [--bytes G[,G2,...]] [--iters k] [--warmup w] [--budget S]
// Rank 0 prints one JSON object: {"ranks", "hosts": [...], "results": [{"bytes", "iters",
// "warmup", "min_s", "median_s", "mean_s", "ok"}]}; each time is one allreduce, the slowest
// rank's, after a barrier. Every rank runs `warmup + iters` allreduces of each size, in order;
// --budget S (seconds) lowers iters per size to about S / (the last warm-up's time), at least 3.
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::vector<int64_t> bytes{4 << 20};
  int iters = 20;
  int warmup = 2;
  double budget = 0;  // seconds per size; 0: always `iters`
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "mpi_allreduce: %s\nusage: mpi_allreduce [--bytes G[,G2,...]] [--iters k] [--warmup w] [--budget S]\n",
               why.c_str());
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage("'" + a + "' needs a value");
    const std::string v = argv[++i];
    if (a == "--bytes") {
      o.bytes.clear();
      std::stringstream ss(v);
      for (std::string item; std::getline(ss, item, ',');) o.bytes.push_back(std::stoll(item));
    } else if (a == "--iters") {
      o.iters = std::stoi(v);
    } else if (a == "--warmup") {
      o.warmup = std::stoi(v);
    } else if (a == "--budget") {
      o.budget = std::stod(v);
    } else {
      usage("unknown option '" + a + "'");
    }
  }
  for (int64_t g : o.bytes)
    if (g < 4 || g % 4 != 0) usage("--bytes: each size must be a positive multiple of 4 (floats), got " + std::to_string(g));
  if (o.iters < 0 || o.warmup < 0 || o.budget < 0) usage("--iters, --warmup and --budget must be >= 0");
  if (o.budget > 0 && o.warmup < 1) usage("--budget needs --warmup >= 1 (it scales from the last warm-up)");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const Options o = parse(argc, argv);

  // Each rank's host name, so the caller can see the ranks really ran on different hosts.
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int name_len = 0;
  MPI_Get_processor_name(name, &name_len);
  std::vector<char> names(static_cast<size_t>(ranks) * MPI_MAX_PROCESSOR_NAME);
  MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);

  std::string json = "{\"ranks\": " + std::to_string(ranks) + ", \"hosts\": [";
  for (int r = 0; r < ranks; ++r)
    json += (r ? ", \"" : "\"") + std::string(&names[static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME]) + "\"";
  json += "], \"results\": [";

  for (size_t s = 0; s < o.bytes.size(); ++s) {
    const int64_t count = o.bytes[s] / 4;
    std::vector<float> send(static_cast<size_t>(count), static_cast<float>(rank + 1));
    std::vector<float> recv(static_cast<size_t>(count), 0.0f);
    std::vector<double> seconds;
    int iters = o.iters;
    for (int it = 0; it < o.warmup + iters; ++it) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      MPI_Allreduce(send.data(), recv.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double dt = MPI_Wtime() - t0, slowest = 0;
      MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (it >= o.warmup) seconds.push_back(slowest);
      if (it == o.warmup - 1 && o.budget > 0)  // every rank has the same `slowest`: same count
        iters = std::clamp(static_cast<int>(o.budget / std::max(slowest, 1e-9)), std::min(3, o.iters), o.iters);
    }
    // Sum of rank + 1 over ranks, exact in float for any sane N.
    const float want = static_cast<float>(ranks) * static_cast<float>(ranks + 1) / 2;
    int ok = (o.warmup + iters == 0) ||
             std::all_of(recv.begin(), recv.end(), [&](float v) { return v == want; });
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);

    std::vector<double> sorted = seconds;
    std::sort(sorted.begin(), sorted.end());
    const double min = sorted.empty() ? 0 : sorted.front();
    const double median = sorted.empty() ? 0
                          : sorted.size() % 2 ? sorted[sorted.size() / 2]
                                              : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
    const double mean = sorted.empty() ? 0 : std::accumulate(sorted.begin(), sorted.end(), 0.0) / sorted.size();
    char item[256];
    std::snprintf(item, sizeof item,
                  "%s{\"bytes\": %lld, \"iters\": %d, \"warmup\": %d, \"min_s\": %.9g, \"median_s\": %.9g, "
                  "\"mean_s\": %.9g, \"ok\": %s}",
                  s ? ", " : "", static_cast<long long>(o.bytes[s]), iters, o.warmup, min, median, mean,
                  all_ok ? "true" : "false");
    json += item;
  }
  json += "]}";
  if (rank == 0) std::printf("%s\n", json.c_str());
  MPI_Finalize();
  return 0;
}
