// The words every transport backend (mpi.cpp, gloo.cpp) uses in its DistributedError messages,
// so that a timeout reads the same on MPI and on Gloo: "rank 0 of 2: allreduce of 1.2 MB ...".
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

#include "lamina/distributed.hpp"

namespace lamina::distributed::detail {

// "1.2 MB", "512 B": the size of the buffer a collective was waiting on.
inline std::string bytes_text(size_t bytes) {
  char text[32];
  if (bytes < 1000) std::snprintf(text, sizeof text, "%zu B", bytes);
  else if (bytes < 1000 * 1000) std::snprintf(text, sizeof text, "%.1f KB", static_cast<double>(bytes) / 1e3);
  else if (bytes < 1000 * 1000 * 1000) std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  else std::snprintf(text, sizeof text, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return text;
}

// "60", "2.5": a timeout in seconds, without trailing zeros.
inline std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

inline std::string rank_text(int rank, int size) {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size);
}

// What a collective that timed out says, on every backend.
inline DistributedError timeout_error(int rank, int size, const std::string& what, double timeout) {
  return DistributedError(rank_text(rank, size) + ": " + what + " got no answer from its peers in " +
                          seconds_text(timeout) + " s: a rank has died or hangs (LAMINA_DIST_TIMEOUT sets the limit)");
}

}  // namespace lamina::distributed::detail
