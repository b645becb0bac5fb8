// The collective operations data-parallel training needs, as an interface: the replicas of
// one model, each training on its shard of every batch (docs/distributed.md), exchange
// gradient sums, batch-norm statistics and rank 0's state through it. The library codes
// against this class only; dist/mpi.hpp implements it over MPI (the one header that includes
// mpi.h), SingleProcess below is the one-process case every ordinary run uses.
//
// Contract every implementation keeps: after a collective, every process holds the SAME bits
// (not merely the same value up to rounding). Replicas stay identical only if each takes the
// same optimizer step, and a sum whose rounding differed from rank to rank would let them
// drift apart, one ulp at a time (dist/mpi.hpp says how MPI is made to keep it).
#pragma once
#include <cstddef>
#include <cstring>
#include <string>

namespace lowbit {
namespace dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1; rank 0 writes the run's files
  virtual int size() const = 0;  // processes training the model together
  virtual int local_size() const = 0;  // those of them on this machine (sharing its cores)
  // v[0..n) becomes the sum of every process's v, elementwise.
  virtual void sum(float* v, size_t n) const = 0;
  virtual void sum(double* v, size_t n) const = 0;
  // out[r * n + i] = v[i] of rank r: every process's n values, in rank order.
  virtual void gather_all(const double* v, size_t n, double* out) const = 0;
  // Rank 0's values (or bytes) replace every other process's.
  virtual void broadcast(float* v, size_t n) const = 0;
  virtual void broadcast(std::string& bytes) const = 0;
  // Returns when every process has called it.
  virtual void barrier() const = 0;
};

// One process: every collective is the identity.
class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  void sum(float*, size_t) const override {}
  void sum(double*, size_t) const override {}
  void gather_all(const double* v, size_t n, double* out) const override {
    if (n > 0) std::memcpy(out, v, n * sizeof(double));
  }
  void broadcast(float*, size_t) const override {}
  void broadcast(std::string&) const override {}
  void barrier() const override {}
};

}  // namespace dist
}  // namespace lowbit
