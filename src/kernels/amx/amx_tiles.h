// AMX tile configuration shared by the amx kernels (include only from kernels/amx/, which is
// compiled with -mamx-tile). Every amx kernel uses the same shapes: 8 tiles of 16 rows × 64 bytes
// (int8: A 16×64 u8, B 16×(16·4) s8, C 16×16 int32; bf16: A 16×32 bf16, B 16×(16·2) bf16,
// C 16×16 fp32), so one configuration per thread serves all of them.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace encserve::kernels::amx {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64);

inline TileConfig KernelTileConfig() {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  return cfg;
}

// Makes sure the calling thread's tiles have our configuration, loading it when they do not.
// Called at the start of every GEMM: AMX state is per thread and kept across context switches,
// but other code in the process (oneDNN, libtorch) may release the tiles (tilerelease) or load
// its own shapes between two of our calls; a stale check would then fault (SIGILL) or compute
// with the wrong shapes. sttilecfg + a 64-byte compare costs far less than one tile multiply
// chain. DetectCpu().amx (tile data permitted) must hold.
inline void ConfigureTiles() {
  static const TileConfig want = KernelTileConfig();
  TileConfig cur;
  // Inline asm with memory operands: GCC 12 does not treat __builtin_ia32_ldtilecfg as reading
  // its argument and may drop the stores that fill the configuration.
  __asm__ volatile("sttilecfg %0" : "=m"(cur));
  if (__builtin_memcmp(&cur, &want, sizeof(TileConfig)) == 0) return;
  __asm__ volatile("ldtilecfg %0" : : "m"(want));
}

}  // namespace encserve::kernels::amx
