// The onnx backend's runtime side (see openvino_backend.h): OpenVINO reads the model, the CPU
// plugin compiles it with `replicas` streams, and every Run() borrows one infer request.
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <openvino/openvino.hpp>

#include "backends/common/host_bert.h"
#include "backends/openvino/openvino_backend.h"
#include "model/bert.h"

namespace encserve::backends {
namespace {

using kernels::Precision;

enum class OutputKind { kHiddenStates, kPooled, kLogits };

std::string DefaultFile(const std::string& model_dir, Precision p) {
  return model_dir + (p == Precision::kInt8 ? "/onnx/model_int8.xml" : "/onnx/model.onnx");
}

// The model's inputs by role; InvalidArgument naming what is missing or unknown.
struct Inputs {
  bool has_type_ids = false;
};
StatusOr<Inputs> CheckInputs(const std::shared_ptr<ov::Model>& model, const std::string& file) {
  std::string names;
  for (const ov::Output<ov::Node>& in : model->inputs()) {
    names += (names.empty() ? "" : ", ") + in.get_any_name();
  }
  Inputs r;
  bool ids = false, mask = false;
  for (const ov::Output<ov::Node>& in : model->inputs()) {
    const std::string name = in.get_any_name();
    const ov::element::Type t = in.get_element_type();
    if (t != ov::element::i64 && t != ov::element::i32) {
      return InvalidArgument(file + ": input '" + name + "' is " + t.get_type_name() +
                             "; token inputs must be int64 or int32");
    }
    if (in.get_partial_shape().rank().is_static() &&
        in.get_partial_shape().rank().get_length() != 2) {
      return InvalidArgument(file + ": input '" + name + "' must be [batch, sequence]");
    }
    if (name == "input_ids") {
      ids = true;
    } else if (name == "attention_mask") {
      mask = true;
    } else if (name == "token_type_ids") {
      r.has_type_ids = true;
    } else {
      return InvalidArgument(file + ": unexpected input '" + name +
                             "' (accepted: input_ids, attention_mask, token_type_ids; the model "
                             "has " +
                             names + ")");
    }
  }
  if (!ids || !mask) {
    return InvalidArgument(file + ": the model has no '" + (ids ? "attention_mask" : "input_ids") +
                           "' input (it has " + names +
                           "); accepted: input_ids, attention_mask [, token_type_ids]");
  }
  return r;
}

StatusOr<OutputKind> CheckOutput(const std::shared_ptr<ov::Model>& model, const ModelConfig& c,
                                 const std::string& file) {
  if (model->outputs().size() != 1) {
    return InvalidArgument(file +
                           ": expected one output (last_hidden_state, a pooled embedding "
                           "or logits), the model has " +
                           std::to_string(model->outputs().size()));
  }
  const ov::PartialShape s = model->output(0).get_partial_shape();
  if (s.rank().is_dynamic() || s[s.size() - 1].is_dynamic()) {
    return InvalidArgument(file + ": the output's last dimension must be static");
  }
  const int64_t last = s[s.size() - 1].get_length();
  const bool cross = c.kind == ModelKind::kCrossEncoder;
  const int64_t want = cross && s.size() == 2 ? c.num_labels : c.bert.hidden_size;
  if ((s.size() != 2 && s.size() != 3) || last != want) {
    return InvalidArgument(file + ": output shape " + s.to_string() + " is neither [batch, seq, " +
                           std::to_string(c.bert.hidden_size) + "] nor [batch, " +
                           std::to_string(want) + "]");
  }
  if (cross && s.size() == 3) {
    return InvalidArgument(file +
                           ": the model folder is a cross-encoder but this ONNX model "
                           "outputs hidden states; export it with its logits "
                           "(tools/prepare_onnx.sh does)");
  }
  if (s.size() == 3) return OutputKind::kHiddenStates;
  return cross ? OutputKind::kLogits : OutputKind::kPooled;
}

int CountFakeQuantize(const std::shared_ptr<ov::Model>& model) {
  int n = 0;
  for (const auto& op : model->get_ops()) {
    if (std::string(op->get_type_name()) == "FakeQuantize") ++n;
  }
  return n;
}

class OpenVinoBackend final : public Backend {
 public:
  static StatusOr<std::unique_ptr<Backend>> Load(const CommonOptions& common,
                                                 const Section& section);
  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override;

 private:
  Status Compile(const std::shared_ptr<ov::Model>& model);
  ov::InferRequest* Acquire() const;
  void Release(ov::InferRequest* r) const;
  void SetInput(ov::InferRequest& r, const std::string& name, const std::vector<int64_t>& v,
                const PaddedBatch& p) const;

  ModelConfig config_;
  CommonOptions common_;
  std::string file_;
  Inputs inputs_;
  OutputKind output_ = OutputKind::kHiddenStates;
  ov::Core core_;
  ov::CompiledModel compiled_;
  mutable std::vector<ov::InferRequest> requests_;
  mutable std::vector<ov::InferRequest*> free_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  BackendInfo info_;
};

Status OpenVinoBackend::Compile(const std::shared_ptr<ov::Model>& model) {
  // fp32 and the int8 model's non-quantised ops in f32, explicitly: the CPU plugin would
  // otherwise pick bf16 on CPUs that have it.
  const ov::element::Type hint =
      common_.precision == Precision::kBF16 ? ov::element::bf16 : ov::element::f32;
  compiled_ = core_.compile_model(model, "CPU", ov::hint::inference_precision(hint),
                                  ov::num_streams(common_.replicas),
                                  ov::inference_num_threads(common_.threads * common_.replicas),
                                  ov::hint::enable_cpu_pinning(false));
  const ov::element::Type used = compiled_.get_property(ov::hint::inference_precision);
  if (used != hint) {
    return FailedPrecondition("OpenVINO's CPU plugin runs this model in " + used.get_type_name() +
                              ", not the " + hint.get_type_name() +
                              " asked for (this CPU may lack it)");
  }
  const int n = common_.replicas;
  requests_.reserve(n);
  for (int i = 0; i < n; ++i) requests_.push_back(compiled_.create_infer_request());
  for (ov::InferRequest& r : requests_) free_.push_back(&r);
  return Status::Ok();
}

ov::InferRequest* OpenVinoBackend::Acquire() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !free_.empty(); });
  ov::InferRequest* r = free_.back();
  free_.pop_back();
  return r;
}

void OpenVinoBackend::Release(ov::InferRequest* r) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(r);
  }
  cv_.notify_one();
}

void OpenVinoBackend::SetInput(ov::InferRequest& r, const std::string& name,
                               const std::vector<int64_t>& v, const PaddedBatch& p) const {
  const ov::element::Type t = compiled_.input(name).get_element_type();
  ov::Tensor tensor(t, ov::Shape{static_cast<size_t>(p.batch), static_cast<size_t>(p.seq)});
  if (t == ov::element::i64) {
    std::copy(v.begin(), v.end(), tensor.data<int64_t>());
  } else {
    int32_t* out = tensor.data<int32_t>();
    for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<int32_t>(v[i]);
  }
  r.set_tensor(name, tensor);
}

StatusOr<Embeddings> OpenVinoBackend::Run(Task task, const TokenBatch& batch) const {
  if (task == Task::kLogits && output_ != OutputKind::kLogits) {
    return FailedPrecondition("this model has no classification head (not a cross-encoder)");
  }
  if (task == Task::kEmbed && output_ == OutputKind::kLogits) {
    return FailedPrecondition(file_ + " outputs logits only; it computes no embeddings");
  }
  RETURN_IF_ERROR(ValidateTokenBatch(batch, config_.bert));
  const PaddedBatch p = PadBatch(batch, config_.bert.pad_token_id);
  ov::InferRequest* r = Acquire();
  struct Lease {
    const OpenVinoBackend* b;
    ov::InferRequest* r;
    ~Lease() { b->Release(r); }
  } lease{this, r};
  try {
    SetInput(*r, "input_ids", p.ids, p);
    SetInput(*r, "attention_mask", p.mask, p);
    if (inputs_.has_type_ids) SetInput(*r, "token_type_ids", p.type_ids, p);
    r->infer();
    const ov::Tensor out = r->get_output_tensor(0);
    if (out.get_element_type() != ov::element::f32) {
      return Internal("OpenVINO output is " + out.get_element_type().get_type_name() + ", not f32");
    }
    const float* data = out.data<const float>();
    if (output_ == OutputKind::kHiddenStates) {
      return PoolPadded(data, p, config_.bert.hidden_size, config_.pooling);
    }
    const int dim = output_ == OutputKind::kLogits ? config_.num_labels : config_.bert.hidden_size;
    Embeddings e = Embeddings::Zeros(p.batch, dim);
    if (out.get_size() != e.data.size()) {
      return Internal("OpenVINO output has " + std::to_string(out.get_size()) + " values, want " +
                      std::to_string(e.data.size()));
    }
    std::copy_n(data, e.data.size(), e.data.begin());
    return e;
  } catch (const std::exception& e) {
    return Internal(std::string("OpenVINO: ") + e.what());
  }
}

StatusOr<std::unique_ptr<Backend>> OpenVinoBackend::Load(const CommonOptions& common,
                                                         const Section& section) {
  std::unique_ptr<OpenVinoBackend> b(new OpenVinoBackend());
  b->common_ = common;
  ASSIGN_OR_RETURN(b->config_, LoadModelConfig(common.model_dir));
  b->file_ = OptionValue(*FindBackend("onnx"), section, "file");
  if (b->file_.empty()) b->file_ = DefaultFile(common.model_dir, common.precision);
  if (!std::filesystem::exists(b->file_)) {
    return NotFound(b->file_ + " does not exist: make it with tools/prepare_onnx.sh " +
                    common.model_dir +
                    " (scripts/setup.sh does it for the default model), or "
                    "name a file with onnx.file");
  }
  try {
    std::shared_ptr<ov::Model> model = b->core_.read_model(b->file_);
    ASSIGN_OR_RETURN(b->inputs_, CheckInputs(model, b->file_));
    ASSIGN_OR_RETURN(b->output_, CheckOutput(model, b->config_, b->file_));
    const int fq = CountFakeQuantize(model);
    if ((common.precision == Precision::kInt8) != (fq > 0)) {
      return InvalidArgument(b->file_ + (fq > 0 ? " is quantised (" + std::to_string(fq) +
                                                      " FakeQuantize ops): load it as int8"
                                                : " is not quantised: int8 needs the "
                                                  "NNCF model (onnx/model_int8.xml)"));
    }
    RETURN_IF_ERROR(b->Compile(model));
  } catch (const std::exception& e) {
    return InvalidArgument("OpenVINO could not load " + b->file_ + ": " + e.what());
  }
  BackendInfo& i = b->info_;
  i.name = "onnx";
  i.device = "cpu";
  i.precision = kernels::PrecisionName(common.precision);
  // "2026.4.1-22982-<hash>-releases/..." → "OpenVINO 2026.4.1-22982"
  std::string build = ov::get_openvino_version().buildNumber;
  if (size_t dash = build.find('-'); dash != std::string::npos) {
    build = build.substr(0, build.find('-', dash + 1));
  }
  const std::string version = "OpenVINO " + build;
  i.library = version;
  i.fp32_kernels = version + " CPU";
  if (common.precision == Precision::kInt8) i.quant_kernels = "NNCF int8";
  DescribeModel(b->config_, &i);
  i.wants_padded_batches = true;
  i.max_concurrent_batches = common.replicas;
  i.description = "ONNX model on OpenVINO: " + std::filesystem::path(b->file_).filename().string() +
                  ", " + i.precision + ", " + version + ", " + std::to_string(common.replicas) +
                  " stream(s) x " + std::to_string(common.threads) + " thread(s)";
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> LoadOpenVinoBackend(const CommonOptions& common,
                                                       const Section& section) {
  return OpenVinoBackend::Load(common, section);
}

}  // namespace encserve::backends
