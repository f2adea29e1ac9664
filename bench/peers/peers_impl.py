"""The peers of bench/peers/run_peers.py (child side): each is a callable taking the padded feeds
(numpy int64 input_ids, attention_mask, token_type_ids) and returning L2-normalised, mean-pooled
[batch, 384] embeddings, with an `info` dict for the results file. See run_peers.py's docstring
for what each peer is."""
import os

import export_onnx as X  # noqa: E402  (shared helpers; run_peers.py puts this folder on sys.path)

THREADS = 2


class OrtPeer:
    def __init__(self, name, path):
        import onnxruntime as ort
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing: run bench/peers/export_onnx.py first")
        so = ort.SessionOptions()
        so.intra_op_num_threads = THREADS
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]
        self.info = {"runtime": "onnxruntime " + ort.__version__, "model_file": path,
                     "providers": self.sess.get_providers(),
                     "session": {"intra_op_num_threads": THREADS, "inter_op_num_threads": 1,
                                 "execution_mode": "ORT_SEQUENTIAL",
                                 "graph_optimization_level": "ORT_ENABLE_ALL",
                                 "allow_spinning": "default (1)"}}

    def __call__(self, feeds):
        return self.sess.run(["sentence_embedding"], {k: feeds[k] for k in self.inputs})[0]


class TorchPeer:
    def __init__(self, name, model_dir, per_tensor=False):
        import torch
        torch.set_num_threads(THREADS)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        self.torch = torch
        mod = X.build_torch_module(model_dir)  # default attention implementation (sdpa)
        attn = getattr(mod.bert.config, "_attn_implementation", None)
        if name == "torch_int8":
            import warnings
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
            # per-channel weights by default (mean cos 0.978 vs 0.950 per-tensor on MiniLM; same speed)
            spec = {torch.nn.Linear} if per_tensor else {torch.nn.Linear: per_channel_dynamic_qconfig}
            mod = quantize_dynamic(mod, spec, dtype=torch.qint8)
        self.mod = mod.eval()
        self.info = {"runtime": "torch " + torch.__version__, "attn_implementation": attn,
                     "num_threads": torch.get_num_threads(), "num_interop_threads": torch.get_num_interop_threads(),
                     "inference_mode": True}
        if name == "torch_int8":
            self.info["quantization"] = ("torch.ao.quantization.quantize_dynamic({nn.Linear}, dtype=qint8), weights "
                                         + ("per-tensor (default_dynamic_qconfig)" if per_tensor
                                            else "per-channel (per_channel_dynamic_qconfig)")
                                         + ", activations quint8 per-tensor dynamic")
            self.info["quantized_engine"] = torch.backends.quantized.engine
        self.info["parallel_info"] = [l.strip() for l in torch.__config__.parallel_info().splitlines()
                                      if "threads" in l or "backend" in l or "OpenMP" in l or "MKL" in l]

    def __call__(self, feeds):
        t = self.torch
        with t.inference_mode():
            out = self.mod(t.from_numpy(feeds["input_ids"]), t.from_numpy(feeds["attention_mask"]),
                           t.from_numpy(feeds["token_type_ids"]))
        return out.numpy()


def mean_pool(hidden, mask):
    import numpy as np
    m = mask[:, :, None].astype(np.float32)
    e = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


class OvPeer:
    """OpenVINO on the exported ONNX model (or the NNCF int8 IR), last_hidden_state pooled here."""

    def __init__(self, name, model_dir):
        import openvino as ov
        path = os.path.join(model_dir, "onnx", "model_int8.xml" if name == "ov_int8" else "model.onnx")
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing: run tools/prepare_onnx.sh first")
        core = ov.Core()
        hint = "bf16" if name == "ov_bf16" else "f32"
        config = {"INFERENCE_NUM_THREADS": THREADS, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": hint}
        self.compiled = core.compile_model(core.read_model(path), "CPU", config)
        got = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))  # "<Type: 'float32'>"
        if {"f32": "float32", "bf16": "bfloat16"}[hint] not in got:
            raise SystemExit(f"{name}: asked for inference precision {hint}, OpenVINO compiled {got}")
        self.request = self.compiled.create_infer_request()
        self.inputs = [i.get_any_name() for i in self.compiled.inputs]
        prims = {}
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            rt = op.get_rt_info()
            if "primitiveType" in rt:
                p = rt["primitiveType"].astype(str)
                prims[p] = prims.get(p, 0) + 1
        self.info = {"runtime": "openvino " + ov.get_version(), "model_file": path,
                     "inference_precision": got, "threads": THREADS, "streams": 1,
                     "primitive_types": prims}

    def __call__(self, feeds):
        out = self.request.infer({k: feeds[k] for k in self.inputs})
        return mean_pool(next(iter(out.values())), feeds["attention_mask"])


class Ct2Peer:
    """CTranslate2 Encoder on the model converted once into <cache>/ct2-minilm."""

    def __init__(self, name, model_dir, cache):
        import ctranslate2
        out = os.path.join(cache, "ct2-minilm")
        if not os.path.exists(os.path.join(out, "model.bin")):
            from ctranslate2.converters import TransformersConverter
            TransformersConverter(model_dir).convert(out, force=True)
        compute = "int8" if name == "ct2_int8" else "float32"
        self.enc = ctranslate2.Encoder(out, device="cpu", compute_type=compute, intra_threads=THREADS,
                                       inter_threads=1)
        self.info = {"runtime": "ctranslate2 " + ctranslate2.__version__, "compute_type": self.enc.compute_type,
                     "intra_threads": THREADS, "model_dir": out,
                     "CT2_FORCE_CPU_ISA": os.environ.get("CT2_FORCE_CPU_ISA", "(default dispatch)")}

    def __call__(self, feeds):
        import numpy as np
        mask = feeds["attention_mask"]
        lengths = mask.sum(1)
        ids = [row[:n].tolist() for row, n in zip(feeds["input_ids"], lengths)]
        tts = [row[:n].tolist() for row, n in zip(feeds["token_type_ids"], lengths)]
        out = self.enc.forward_batch(ids, token_type_ids=tts)
        hidden = np.array(out.last_hidden_state)
        return mean_pool(hidden, mask[:, :hidden.shape[1]])


def make_peer(name, args):
    if name == "ort_fp32":
        return OrtPeer(name, os.path.join(args.cache, "minilm.opt.onnx"))
    if name == "ort_int8":
        return OrtPeer(name, os.path.join(args.cache, "minilm.int8.onnx"))
    if name in ("torch_fp32", "torch_int8"):
        return TorchPeer(name, args.model, per_tensor=args.torch_int8_per_tensor)
    if name in ("ov_fp32", "ov_bf16", "ov_int8"):
        return OvPeer(name, args.model)
    if name in ("ct2_fp32", "ct2_int8"):
        return Ct2Peer(name, args.model, args.cache)
    raise SystemExit(f"unknown peer {name}")
