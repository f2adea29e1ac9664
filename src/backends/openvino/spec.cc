#include "backends/openvino/openvino_backend.h"

namespace encserve::backends {

BackendSpec OpenVinoBackendSpec() {
  using kernels::Precision;
  BackendSpec s;
  s.name = "onnx";
  s.description = "ONNX model on OpenVINO (C++ runtime, CPU plugin)";
  s.precisions = {Precision::kF32, Precision::kBF16, Precision::kInt8};
  s.precision_notes = {
      {Precision::kF16,
       "not offered: OpenVINO's CPU plugin computes f16 only on CPUs with "
       "AVX512-FP16, so results would depend on the CPU"},
      {Precision::kInt4, "no int4 model is produced for ONNX (NNCF's int4 is weight-only)"}};
  s.options = {
      {"file",
       "",
       "the .onnx or .xml to load; default <model>/onnx/model.onnx (fp32, bf16) or "
       "<model>/onnx/model_int8.xml (int8), written by tools/prepare_onnx.sh",
       {},
       "",
       ""},
  };
#if ENCSERVE_HAVE_OPENVINO
  s.create = [](const CommonOptions& common, const Sections& sections) {
    auto it = sections.find("onnx");
    return LoadOpenVinoBackend(common, it == sections.end() ? Section{} : it->second);
  };
#else
  s.unavailable =
      "this build has no OpenVINO (CMake did not find the PyPI package openvino; run "
      "scripts/setup.sh, then reconfigure)";
#endif
  return s;
}

}  // namespace encserve::backends
