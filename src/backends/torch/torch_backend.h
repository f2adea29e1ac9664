// The torch backend: the BERT forward written with libtorch's C++ API (Debian's libtorch
// 1.13), built from the same model.safetensors as the native engine (no Python, no
// TorchScript file). Precisions: fp32; bf16 (weights and activations, oneDNN matmuls); int8 as
// PyTorch's dynamic quantisation of the encoder's Linear layers (per-channel symmetric int8
// weights, activations quantised per batch at run time) — what torch.ao.quantization.
// quantize_dynamic does with per_channel_dynamic_qconfig. Debian's libtorch is built without
// FBGEMM, so the quantised engine is oneDNN. fp16: not supported (CPU libtorch 1.13 has no
// fp16 matmul). Batches run padded (attention mask), like PyTorch eager.
#pragma once

#include "backends/registry.h"

namespace encserve::backends {

BackendSpec TorchBackendSpec();

// Defined in torch_backend_impl.cc (built only with libtorch).
StatusOr<std::unique_ptr<Backend>> LoadTorchBackend(const CommonOptions& common,
                                                    const Section& section);

}  // namespace encserve::backends
