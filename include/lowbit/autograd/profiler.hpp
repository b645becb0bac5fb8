// A small profiler for "where does the time go": while a ProfileScope is alive in a thread,
// backward() times every node by op name, and nn::Module times the forward of every leaf
// module by type name. The active profile is a documented thread-local pointer (like the
// no-grad flag); nothing is recorded and nothing costs time when no scope is active.
#pragma once
#include <chrono>
#include <map>
#include <string>

namespace lowbit {

struct OpProfile {
  struct Entry {
    int64_t calls = 0;
    double seconds = 0;
  };
  std::map<std::string, Entry> forward, backward;
  void add(std::map<std::string, Entry>& m, const std::string& name, double s) {
    Entry& e = m[name];
    ++e.calls;
    e.seconds += s;
  }
};

// The documented thread-local: the profile that receives timings in this thread, or null.
inline OpProfile*& active_profile() {
  thread_local OpProfile* profile = nullptr;
  return profile;
}

class ProfileScope {
 public:
  explicit ProfileScope(OpProfile& p) : prev_(active_profile()) { active_profile() = &p; }
  ~ProfileScope() { active_profile() = prev_; }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  OpProfile* prev_;
};

// Times one region into the active profile's forward or backward table (no-op without one).
class ProfileTimer {
 public:
  ProfileTimer(bool backward, const std::string& name)
      : profile_(active_profile()), backward_(backward), name_(profile_ ? name : std::string()) {
    if (profile_) start_ = std::chrono::steady_clock::now();
  }
  ~ProfileTimer() {
    if (!profile_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    profile_->add(backward_ ? profile_->backward : profile_->forward, name_, s);
  }
  ProfileTimer(const ProfileTimer&) = delete;
  ProfileTimer& operator=(const ProfileTimer&) = delete;

 private:
  OpProfile* profile_;
  bool backward_;
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lowbit
