#include "backends/fault/fault_backend.h"

#include <chrono>
#include <thread>

namespace encserve::backends {

StatusOr<FaultOptions> FaultOptions::FromSection(const Section& section) {
  const BackendSpec& spec = *FindBackend("fault");
  auto value = [&](std::string_view key) { return OptionValue(spec, section, key); };
  auto count = [&](std::string_view key) {
    return ParseIntOption("fault", key, value(key), 0, 1 << 30);
  };
  FaultOptions o;
  o.inner = value("inner");
  if (o.inner == "fault") return InvalidArgument("fault.inner: fault cannot wrap itself");
  ASSIGN_OR_RETURN(o.fail_load, ParseBoolOption("fault", "fail_load", value("fail_load")));
  ASSIGN_OR_RETURN(o.fail_every, count("fail_every"));
  ASSIGN_OR_RETURN(o.fail_first, count("fail_first"));
  ASSIGN_OR_RETURN(o.hang_every, count("hang_every"));
  ASSIGN_OR_RETURN(o.hang_ms, count("hang_ms"));
  return o;
}

BackendSpec FaultBackendSpec() {
  using kernels::Precision;
  BackendSpec s;
  s.name = "fault";
  s.description =
      "test double: wraps another backend and injects load failures, batch errors "
      "and hangs";
  s.precisions = {Precision::kF32, Precision::kBF16, Precision::kF16, Precision::kInt8,
                  Precision::kInt4};
  s.for_tests = true;
  s.options = {
      {"inner",
       "native",
       "the backend whose answers it passes on (any registered one but fault)",
       {},
       "",
       ""},
      {"fail_load", "false", "fail at load", {"true", "false"}, "", ""},
      {"fail_every", "0", "every Nth batch fails (0 = never)", {}, "", ""},
      {"fail_first", "0", "the first K batches fail", {}, "", ""},
      {"hang_every", "0", "every Nth batch hangs hang_ms first (0 = never)", {}, "", ""},
      {"hang_ms", "0", "how long a hang lasts", {}, "", ""},
  };
  s.create = [](const CommonOptions& common,
                const Sections& sections) -> StatusOr<std::unique_ptr<Backend>> {
    auto it = sections.find("fault");
    ASSIGN_OR_RETURN(FaultOptions o,
                     FaultOptions::FromSection(it == sections.end() ? Section{} : it->second));
    if (o.fail_load) return Unavailable("injected load failure (fault.fail_load)");
    ASSIGN_OR_RETURN(std::unique_ptr<Backend> inner, CreateBackend(o.inner, common, sections));
    return std::unique_ptr<Backend>(new FaultBackend(std::move(inner), o));
  };
  return s;
}

FaultBackend::FaultBackend(std::unique_ptr<Backend> inner, FaultOptions options)
    : inner_(std::move(inner)), options_(std::move(options)), info_(inner_->info()) {
  info_.name = "fault";
  info_.description =
      "fault injection over " + inner_->info().name + " (" + inner_->info().description + ")";
}

StatusOr<Embeddings> FaultBackend::Run(Task task, const TokenBatch& batch) const {
  const int64_t n = count_.fetch_add(1) + 1;  // this batch's number, from 1
  if (options_.hang_every > 0 && n % options_.hang_every == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.hang_ms));
  }
  if (n <= options_.fail_first || (options_.fail_every > 0 && n % options_.fail_every == 0)) {
    return Internal("injected fault in batch " + std::to_string(n));
  }
  return inner_->Run(task, batch);
}

}  // namespace encserve::backends
