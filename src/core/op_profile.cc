#include "core/op_profile.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

namespace encserve::profile {
namespace {

std::atomic<bool> g_enabled{false};
std::mutex g_mu;
std::vector<OpTotal>& Table() {
  static std::vector<OpTotal> table;  // a handful of ops: linear search
  return table;
}
thread_local Scope* t_current = nullptr;

}  // namespace

bool OpKey::operator==(const OpKey& o) const {
  return n == o.n && k == o.k && std::strcmp(label, o.label) == 0;
}

bool Enabled() {
  return g_enabled.load(std::memory_order_relaxed);
}

void SetEnabled(bool on) {
  g_enabled.store(on);
}

void Reset() {
  std::lock_guard<std::mutex> lock(g_mu);
  Table().clear();
}

void Add(const OpKey& key, double ns, double flops, long calls) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto& table = Table();
  auto it =
      std::find_if(table.begin(), table.end(), [&](const OpTotal& t) { return t.key == key; });
  if (it == table.end()) it = table.insert(table.end(), OpTotal{key, 0, 0, 0});
  it->calls += calls;
  it->ns += ns;
  it->flops += flops;
}

Scope::Scope(const char* label, int n, int k, double flops)
    : on_(Enabled()), key_{label, n, k}, flops_(flops) {
  if (!on_) return;
  parent_ = t_current;
  t_current = this;
  t0_ = std::chrono::steady_clock::now();
}

Scope::~Scope() {
  if (!on_) return;
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0_).count();
  t_current = parent_;
  if (parent_ != nullptr) parent_->child_ns_ += ns;
  Add(key_, ns - child_ns_, flops_);
}

std::vector<OpTotal> Snapshot() {
  std::vector<OpTotal> out;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    out = Table();
  }
  std::sort(out.begin(), out.end(), [](const OpTotal& a, const OpTotal& b) { return a.ns > b.ns; });
  return out;
}

std::string Name(const OpKey& key) {
  std::string s(key.label);
  if (key.n > 0) {
    // appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on " " + to_string()
    s.push_back(' ');
    s.append(std::to_string(key.n));
    s.push_back('x');
    s.append(std::to_string(key.k));
  }
  return s;
}

}  // namespace encserve::profile
