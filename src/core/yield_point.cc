#include "core/yield_point.h"

namespace encserve::core {
namespace {
thread_local const YieldHook* tl_hook = nullptr;
}  // namespace

const YieldHook* CurrentYieldHook() {
  return tl_hook;
}

ScopedYieldHook::ScopedYieldHook(const YieldHook* hook) : previous_(tl_hook) {
  tl_hook = hook;
}

ScopedYieldHook::~ScopedYieldHook() {
  tl_hook = previous_;
}

}  // namespace encserve::core
