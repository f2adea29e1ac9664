// The AMX tile configuration every amx kernel uses (and the AMX peak probe, kernels/peak.cc):
// 8 tiles of 16 rows × 64 bytes (int8: A 16×64 u8, B 16×(16·4) s8, C 16×16 int32; bf16: A 16×32
// bf16, B 16×(16·2) bf16, C 16×16 fp32). Plain data: includable without -mamx-tile.
#pragma once

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

}  // namespace encserve::kernels::amx
