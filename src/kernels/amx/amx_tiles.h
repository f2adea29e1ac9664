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

// Loads the configuration on the calling thread the first time (AMX state is per thread; the
// OS keeps it across context switches). DetectCpu().amx (tile data permitted) must hold.
inline void ConfigureTiles() {
  thread_local bool configured = false;
  if (configured) return;
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  // Inline asm with a memory operand: GCC 12 does not treat __builtin_ia32_ldtilecfg as reading
  // its argument and may drop the stores that fill cfg.
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
  configured = true;
}

}  // namespace encserve::kernels::amx
