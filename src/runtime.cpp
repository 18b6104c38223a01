// Threads: oneDNN (Debian's build) runs on OpenMP, so its thread count is OpenMP's.
// Memory: a process-wide limit the model checks its estimates against, and the machine's memory.
#include "lamina/runtime.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lamina/error.hpp"

namespace lamina {

void set_num_threads(int n) {
  if (n < 1) throw ValueError("set_num_threads: need at least 1 thread, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

namespace {

struct MemoryLimit {
  int64_t bytes = 0;
  std::string name = "the memory limit";
};

MemoryLimit& limit_state() {
  static MemoryLimit limit;
  return limit;
}

// A cgroup limit file's value; 0 for "max", absurd values (v1 writes ~2^63 for none) or no file.
int64_t cgroup_limit(const std::string& path) {
  std::ifstream f(path);
  std::string text;
  if (!(f >> text) || text == "max") return 0;
  try {
    const long long v = std::stoll(text);
    return v > 0 && v < (int64_t{1} << 60) ? v : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

void set_memory_limit(int64_t bytes, std::string name) {
  if (bytes < 0) throw ValueError("set_memory_limit: bytes must be >= 0 (0: no limit), got " + std::to_string(bytes));
  limit_state() = {bytes, std::move(name)};
}

int64_t memory_limit() { return limit_state().bytes; }

const std::string& memory_limit_name() { return limit_state().name; }

int64_t system_memory_bytes() {
  std::vector<int64_t> found;
  // Our cgroups, from /proc/self/cgroup ("0::/path" for v2, "4:memory:/path" for v1), each
  // looked up under the mount point and at its root (inside a container the root is ours).
  std::ifstream cgroups("/proc/self/cgroup");
  for (std::string line; std::getline(cgroups, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), rel = line.substr(b + 1);
    if (controllers.empty()) {
      for (const std::string& dir : {"/sys/fs/cgroup" + rel, std::string("/sys/fs/cgroup")})
        found.push_back(cgroup_limit(dir + "/memory.max"));
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      for (const std::string& dir : {"/sys/fs/cgroup/memory" + rel, std::string("/sys/fs/cgroup/memory")})
        found.push_back(cgroup_limit(dir + "/memory.limit_in_bytes"));
    }
  }
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream in(line.substr(9));
    long long kb = 0;
    if (in >> kb && kb > 0) found.push_back(kb * 1024);
  }
  int64_t best = 0;
  for (int64_t v : found)
    if (v > 0 && (best == 0 || v < best)) best = v;
  return best;
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"KB", "MB", "GB", "TB", "PB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace lamina
