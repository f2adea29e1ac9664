// AMX tile helpers shared by the amx kernels (include only from kernels/amx/, which is compiled
// with -mamx-tile). Every amx kernel uses the same shapes (kernels/amx/tile_config.h), so one
// configuration per thread serves all of them.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/amx/tile_config.h"

namespace encserve::kernels::amx {

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

// C tiles tmm0-3 → c[MT·16 rows, 32 columns] of 4-byte values (int32 or fp32), row stride 128 B.
template <int MT>
inline void StoreCTiles(void* c) {
  char* p = static_cast<char*>(c);
  _tile_stored(0, p, 128);
  _tile_stored(1, p + 64, 128);
  if constexpr (MT == 2) {
    _tile_stored(2, p + 16 * 128, 128);
    _tile_stored(3, p + 16 * 128 + 64, 128);
  }
}

// The block schedule of the AMX GEMMs: blocks of `block` panels (weights that fit in L2), then
// 32-row blocks (their activations stay in L1 for K = 384), then the panels of the block.
// compute(i, p, two) issues the tile work of rows i.. (two A tiles when more than 16 rows remain)
// × panel p into tmm0-3; finish(c, i, off, rows, cols) runs the epilogue of a stored block.
// Software pipelined: block b's tile work is issued before block b − 1's epilogue, from the
// other half of a double buffer, so the tile unit and the vector units overlap.
template <typename T, typename Compute, typename Finish>
inline void RunBlocks(int m, int n1, int p0, int p1, int block, Compute&& compute,
                      Finish&& finish) {
  constexpr int kNr = 32, kMr = 32;
  alignas(64) T c[2][kMr * kNr];
  int prev_i = -1, prev_off = 0, prev_rows = 0, prev_cols = 0, buf = 0;
  for (int pb = p0; pb < p1; pb += block) {
    const int pe = pb + block < p1 ? pb + block : p1;
    for (int i = 0; i < m; i += kMr) {
      const int rows = m - i < kMr ? m - i : kMr;
      for (int p = pb; p < pe; ++p) {
        const int off = p * kNr, cols = n1 - off < kNr ? n1 - off : kNr;
        compute(i, p, rows > 16);
        if (prev_i >= 0) finish(c[buf ^ 1], prev_i, prev_off, prev_rows, prev_cols);
        if (rows > 16) {
          StoreCTiles<2>(c[buf]);
        } else {
          StoreCTiles<1>(c[buf]);
        }
        prev_i = i;
        prev_off = off;
        prev_rows = rows;
        prev_cols = cols;
        buf ^= 1;
      }
    }
  }
  if (prev_i >= 0) finish(c[buf ^ 1], prev_i, prev_off, prev_rows, prev_cols);
}

}  // namespace encserve::kernels::amx
