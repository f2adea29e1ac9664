// The onnx backend: ONNX models on OpenVINO. Loads an .onnx file (or an OpenVINO IR .xml) and
// runs it with the OpenVINO C++ runtime, CPU plugin (the PyPI openvino wheel's SDK). Accepted
// models (docs/backends.md): int64 or int32 inputs input_ids and attention_mask [batch, seq],
// optionally token_type_ids [batch, seq]; one output, either last_hidden_state
// [batch, seq, hidden] (pooled here as the model folder's pooling says), a pooled
// [batch, hidden] embedding, or logits [batch, num_labels] for cross-encoders.
// Precisions: fp32 (inference precision hint f32, set explicitly: OpenVINO would otherwise run
// bf16 on CPUs that have it), bf16 (hint bf16), int8 (the NNCF-quantised IR that
// tools/prepare_onnx.sh writes). Batches run padded.
#pragma once

#include "backends/registry.h"

namespace encserve::backends {

BackendSpec OpenVinoBackendSpec();

// Defined in openvino_backend_impl.cc (built only with the OpenVINO SDK).
StatusOr<std::unique_ptr<Backend>> LoadOpenVinoBackend(const CommonOptions& common,
                                                       const Section& section);

}  // namespace encserve::backends
