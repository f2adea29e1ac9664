// Which BLAS MLX's fp32 GEMMs run on in this process, and its thread setting (mlx backend only).
//
// libmlx.so from the PyPI wheel mlx[cpu] calls cblas_sgemm for every fp32 matmul (its bf16 /
// fp16 GEMMs and quantized_matmul are its own loops). The wheel bundles Ubuntu's netlib
// reference BLAS (mlx_cpu.libs/libblas-<hash>.so.3.10.0: single-threaded, unblocked), but the
// symbol is bound like any other: a BLAS earlier in the process's global lookup scope wins —
// LD_PRELOAD, or a library that the executable loads before libmlx (Debian's libtorch brings
// libblas.so.3 = OpenBLAS). So the BLAS in use is found at run time, the way the dynamic
// linker binds it (dlsym(RTLD_DEFAULT)), and when it is OpenBLAS its thread count is settable.
#pragma once

#include <dlfcn.h>

#include <string>

namespace encserve::backends::mlx_blas {

struct Blas {
  std::string library;                  // the file that defines cblas_sgemm ("" if unknown)
  void (*set_threads)(int) = nullptr;   // openblas_set_num_threads (OpenBLAS only)
  int (*get_threads)() = nullptr;       // openblas_get_num_threads (OpenBLAS only)
  bool openblas() const { return set_threads != nullptr; }
};

inline Blas FindBlas() {
  Blas b;
  void* sgemm = dlsym(RTLD_DEFAULT, "cblas_sgemm");
  Dl_info where{};
  if (sgemm == nullptr || dladdr(sgemm, &where) == 0 || where.dli_fname == nullptr) return b;
  b.library = where.dli_fname;
  if (const size_t slash = b.library.rfind('/'); slash != std::string::npos) {
    b.library = b.library.substr(slash + 1);
  }
  // OpenBLAS's own entry points, looked up in that library and what it depends on (Debian's
  // libblas.so.3 is a front for libopenblas.so.0).
  if (void* handle = dlopen(where.dli_fname, RTLD_NOW | RTLD_NOLOAD)) {
    b.set_threads = reinterpret_cast<void (*)(int)>(dlsym(handle, "openblas_set_num_threads"));
    b.get_threads = reinterpret_cast<int (*)()>(dlsym(handle, "openblas_get_num_threads"));
    if (b.set_threads == nullptr) b.get_threads = nullptr;
    dlclose(handle);
  }
  return b;
}

}  // namespace encserve::backends::mlx_blas
