#include "backends/backend.h"

namespace encserve::backends {

const char* TaskName(Task task) {
  return task == Task::kEmbed ? "embed" : "logits";
}

std::string KernelsName(const std::string& fp32_kernels, const std::string& quant_kernels) {
  return quant_kernels.empty() ? fp32_kernels : fp32_kernels + "/" + quant_kernels;
}

std::string BackendInfo::kernels() const {
  return KernelsName(fp32_kernels, quant_kernels);
}

std::vector<std::string> DefaultLabels(int num_labels) {
  std::vector<std::string> labels;
  for (int i = 0; i < num_labels; ++i) labels.push_back("LABEL_" + std::to_string(i));
  return labels;
}

Status CheckOutputShape(const BackendInfo& info, Task task, const TokenBatch& batch,
                        const Embeddings& out) {
  const int dim = task == Task::kEmbed ? info.hidden_size : info.num_labels;
  const size_t size = static_cast<size_t>(out.rows) * out.dim;
  if (out.rows != batch.num_seqs() || out.dim != dim || out.data.size() != size) {
    return Internal("backend " + info.name + " returned [" + std::to_string(out.rows) + ", " +
                    std::to_string(out.dim) + "] for " + std::to_string(batch.num_seqs()) +
                    " sequences (" + TaskName(task) + ", expected dim " + std::to_string(dim) +
                    ")");
  }
  return Status::Ok();
}

}  // namespace encserve::backends
