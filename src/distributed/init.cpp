// distributed::init(): which communicator this process was launched for, read from the
// environment (mpirun's variables, or LAMINA_RANK / LAMINA_WORLD_SIZE / LAMINA_RENDEZVOUS for
// Gloo), and LAMINA_DIST_TIMEOUT. The backends themselves are in mpi.cpp and gloo.cpp.
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "lamina/distributed_backends.hpp"

namespace lamina::distributed {

namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

int int_from_env(const char* name, const char* value) {
  int out = 0;
  const char* end = value + std::char_traits<char>::length(value);
  const auto [ptr, ec] = std::from_chars(value, end, out);
  if (ec != std::errc() || ptr != end)
    throw ValueError(std::string(name) + "='" + value + "' is not an integer");
  return out;
}

// LAMINA_DIST_TIMEOUT: seconds a collective waits for its peers (0: forever); unset: the default.
std::optional<double> timeout_from_env() {
  const char* value = env("LAMINA_DIST_TIMEOUT");
  if (value == nullptr) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double seconds = std::strtod(value, &end);
  if (end == value || *end != '\0' || errno != 0 || !std::isfinite(seconds) || seconds < 0)
    throw ValueError(std::string("LAMINA_DIST_TIMEOUT='") + value +
                     "': expected the seconds a collective waits for its peers, a number >= 0 (0: forever)");
  return seconds;
}

}  // namespace

bool launched_by_mpi() {
  return env("OMPI_COMM_WORLD_SIZE") != nullptr || env("PMI_SIZE") != nullptr || env("PMIX_RANK") != nullptr;
}

std::shared_ptr<Communicator> init() {
  const std::optional<double> timeout = timeout_from_env();  // a bad value fails before any rank connects
  const char* rank = env("LAMINA_RANK");
  const char* size = env("LAMINA_WORLD_SIZE");
  const char* rendezvous = env("LAMINA_RENDEZVOUS");
  std::shared_ptr<Communicator> comm;
  if (launched_by_mpi()) {
    comm = mpi();
  } else if (rank != nullptr && size != nullptr && rendezvous != nullptr) {
    const char* iface = env("LAMINA_IFACE");
    comm = gloo({.rank = int_from_env("LAMINA_RANK", rank),
                 .size = int_from_env("LAMINA_WORLD_SIZE", size),
                 .rendezvous = rendezvous,
                 .interface = iface != nullptr ? iface : ""});
  } else if (rank != nullptr || size != nullptr || rendezvous != nullptr) {
    std::string missing;
    for (const auto& [name, value] : {std::pair{"LAMINA_RANK", rank}, std::pair{"LAMINA_WORLD_SIZE", size},
                                      std::pair{"LAMINA_RENDEZVOUS", rendezvous}})
      if (value == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
    throw ValueError("distributed::init: Gloo needs LAMINA_RANK, LAMINA_WORLD_SIZE and LAMINA_RENDEZVOUS; " +
                     missing + " not set");
  } else {
    comm = local();
  }
  if (timeout) comm->set_timeout(*timeout);
  return comm;
}

}  // namespace lamina::distributed
