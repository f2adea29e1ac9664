#include "backends/torch/torch_backend.h"

namespace encserve::backends {

BackendSpec TorchBackendSpec() {
  using kernels::Precision;
  BackendSpec s;
  s.name = "torch";
  s.description = "PyTorch (libtorch C++) eager BERT from model.safetensors";
  s.precisions = {Precision::kF32, Precision::kBF16, Precision::kInt8};
  s.precision_notes = {{Precision::kF16,
                        "CPU libtorch 1.13 has no fp16 matmul (addmm is not implemented for "
                        "'Half' on CPU)"},
                       {Precision::kInt4, "PyTorch's dynamic quantisation has no int4"}};
  s.options = {{"quantized_engine",
                "onednn",
                "int8: PyTorch's quantised engine (Debian's libtorch has no fbgemm)",
                {"onednn", "qnnpack"},
                "",
                ""},
               {"reduce_range",
                "true",
                "int8: 7-bit activations, as quantize_dynamic's Linear always asks (false: 8-bit, "
                "more accurate on oneDNN)",
                {"true", "false"},
                "",
                ""}};
#if ENCSERVE_HAVE_TORCH
  s.create = [](const CommonOptions& common, const Sections& sections) {
    auto it = sections.find("torch");
    return LoadTorchBackend(common, it == sections.end() ? Section{} : it->second);
  };
#else
  s.unavailable =
      "this build has no libtorch (CMake did not find Debian's libtorch-dev; run "
      "scripts/setup.sh, then reconfigure)";
#endif
  return s;
}

}  // namespace encserve::backends
