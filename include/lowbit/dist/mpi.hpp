// dist::Communicator over MPI: the only lowbit header that includes mpi.h. A program that
// includes it links MPI (CMake: LOWBIT_MPI and MPI::MPI_CXX; by hand: mpicxx); nothing else
// in the library needs MPI, and a build without it is unchanged (docs/distributed.md).
//
//   dist::MpiSession session(&argc, &argv);      // MPI_Init ... MPI_Finalize
//   dist::MpiCommunicator comm;                   // MPI_COMM_WORLD, duplicated
//
// Same bits on every rank (communicator.hpp's contract): MPI_Allreduce may add the ranks'
// values in a different order on different ranks (the standard only advises against it), so
// sums are a reduce-scatter followed by an all-gather: each block of the vector is summed
// once, on one rank, and that rank's result is copied to the others. It is also how
// bandwidth-optimal all-reduces are built (Patarasuk & Yuan 2009), so it costs no more.
#pragma once
// The C API only: Open MPI's and MPICH's deprecated C++ bindings stay out.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "communicator.hpp"

namespace lowbit {
namespace dist {

// True when the process was started by an MPI launcher (mpirun/mpiexec of Open MPI or
// MPICH, srun with PMI): its environment names the job's size. A program started on its own
// then runs as one process without initializing MPI at all.
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// MPI_Init in the constructor, MPI_Finalize in the destructor (one per program).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv) { MPI_Init(argc, argv); }
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  // Ends every process of the job with `status` (after an error on one rank, the others would
  // otherwise wait in their next collective for ever).
  [[noreturn]] static void abort(int status) {
    MPI_Abort(MPI_COMM_WORLD, status);
    std::exit(status);  // not reached
  }
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm node;  // the processes that share this machine's memory
    MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  void sum(float* v, size_t n) const override { sum_blocks(v, n, MPI_FLOAT); }
  void sum(double* v, size_t n) const override { sum_blocks(v, n, MPI_DOUBLE); }
  void gather_all(const double* v, size_t n, double* out) const override {
    MPI_Allgather(v, count(n), MPI_DOUBLE, out, count(n), MPI_DOUBLE, comm_);
  }
  void broadcast(float* v, size_t n) const override { MPI_Bcast(v, count(n), MPI_FLOAT, 0, comm_); }
  void broadcast(std::string& bytes) const override {
    uint64_t n = bytes.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm_);
    bytes.resize(static_cast<size_t>(n));
    if (n > 0) MPI_Bcast(&bytes[0], count(static_cast<size_t>(n)), MPI_CHAR, 0, comm_);
  }
  void barrier() const override { MPI_Barrier(comm_); }

 private:
  static int count(size_t n) {
    LOWBIT_CHECK(n <= static_cast<size_t>(INT_MAX), "MpiCommunicator: ", n, " values in one call, MPI counts are int");
    return static_cast<int>(n);
  }
  // Reduce-scatter + all-gather over the vector padded to size_ equal blocks (see the top).
  template <class T>
  void sum_blocks(T* v, size_t n, MPI_Datatype type) const {
    if (size_ == 1 || n == 0) return;
    const size_t p = static_cast<size_t>(size_), block = (n + p - 1) / p;
    std::vector<T> all(block * p, T(0)), mine(block);
    std::copy(v, v + n, all.begin());
    MPI_Reduce_scatter_block(all.data(), mine.data(), count(block), type, MPI_SUM, comm_);
    MPI_Allgather(mine.data(), count(block), type, all.data(), count(block), type, comm_);
    std::copy(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), v);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

}  // namespace dist
}  // namespace lowbit
