// The transports for data-parallel training (distributed.hpp), in their own library,
// liblamina_distributed (CMake: Lamina::distributed), so that liblamina itself needs no MPI.
//
//   mpirun -np 4 ./train            // each process:
//   auto comm = lamina::distributed::init();   // MPI_COMM_WORLD under mpirun
//   model.distribute(comm);
#pragma once

#include <memory>
#include <string>

#include "lamina/distributed.hpp"

namespace lamina::distributed {

// MPI_COMM_WORLD (OpenMPI 4.1). Initializes MPI on first use (MPI_THREAD_FUNNELED: only the thread
// that trains calls MPI) and finalizes it at exit. Errors come back as DistributedError rather
// than aborting inside MPI (MPI_ERRORS_RETURN); a silent peer is caught by the timeout.
std::shared_ptr<Communicator> mpi();
// Whether this process was started by mpirun / mpiexec (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
// PMIX_RANK in the environment): MPI is then initialized, otherwise it is not touched.
bool launched_by_mpi();

// Gloo over TCP, for runs without a launcher: every rank is started by hand (or by a scheduler)
// with the same rendezvous directory on a file system they all see.
struct GlooOptions {
  int rank = 0;
  int size = 1;
  std::string rendezvous;  // a directory every rank can read and write (gloo's FileStore)
  std::string interface;   // network interface to bind, e.g. "eth0"; empty: the host name's address
};
std::shared_ptr<Communicator> gloo(const GlooOptions& options);

// The communicator this process was launched for: MPI under mpirun; Gloo when LAMINA_RANK,
// LAMINA_WORLD_SIZE and LAMINA_RENDEZVOUS are set (LAMINA_IFACE optional); otherwise local().
std::shared_ptr<Communicator> init();

}  // namespace lamina::distributed
