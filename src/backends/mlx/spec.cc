#include "backends/mlx/mlx_backend.h"

namespace encserve::backends {

BackendSpec MlxBackendSpec() {
  using kernels::Precision;
  BackendSpec s;
  s.name = "mlx";
  s.description = "MLX (C++ API, CPU) BERT from model.safetensors; int8/int4 via quantized_matmul";
  s.precisions = {Precision::kF32, Precision::kBF16, Precision::kF16, Precision::kInt8,
                  Precision::kInt4};
  s.options = {{"group_size",
                "64",
                "int8/int4: weights per quantisation group (mlx quantize)",
                {"32", "64", "128"},
                "",
                ""}};
#if ENCSERVE_HAVE_MLX
  s.create = [](const CommonOptions& common, const Sections& sections) {
    auto it = sections.find("mlx");
    return LoadMlxBackend(common, it == sections.end() ? Section{} : it->second);
  };
#else
  s.unavailable =
      "this build has no MLX (CMake did not find the PyPI package mlx[cpu]; run "
      "scripts/setup.sh, then reconfigure)";
#endif
  return s;
}

}  // namespace encserve::backends
