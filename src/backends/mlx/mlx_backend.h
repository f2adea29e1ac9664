// The mlx backend: the BERT forward written with the MLX C++ API (libmlx from the PyPI wheel
// mlx[cpu]), built from the same model.safetensors as the native engine. Precisions: fp32,
// bf16 and fp16 (weights and activations), and int8 / int4 through mlx::core::quantize (affine,
// per group of `group_size` weights along the input dimension, default 64) and
// quantized_matmul: the seed's "MLX-style" int8 and int4 experiments, computing the whole
// model. Batches run padded (attention mask), like MLX's own Python BERT examples.
#pragma once

#include "backends/registry.h"

namespace encserve::backends {

BackendSpec MlxBackendSpec();

// Defined in mlx_backend_impl.cc (built only with libmlx).
StatusOr<std::unique_ptr<Backend>> LoadMlxBackend(const CommonOptions& common,
                                                  const Section& section);

}  // namespace encserve::backends
