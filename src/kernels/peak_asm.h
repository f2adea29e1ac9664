// Single-core peak probes in assembly (kernels/peak.cc defines the loops, kernels/peak.h lists
// them): `iters` trips of 24 (zmm) or 12 (ymm) independent chains of one instruction, well above
// its latency × issue width. Assembly because GCC keeps intrinsic accumulator arrays partly in
// memory. An instruction macro Z(i) / Y(i) expands to the text of one `insn src1, src2, dst_i`
// (sources zmm30/zmm31 or ymm14/ymm15, which `init` sets up).
#pragma once

#define ENCSERVE_PEAK_R3(op, a, b, c) op(a) op(b) op(c)
#define ENCSERVE_PEAK_BODY12(X) \
  ENCSERVE_PEAK_R3(X, 0, 1, 2)  \
  ENCSERVE_PEAK_R3(X, 3, 4, 5) ENCSERVE_PEAK_R3(X, 6, 7, 8) ENCSERVE_PEAK_R3(X, 9, 10, 11)
#define ENCSERVE_PEAK_BODY24(X)   \
  ENCSERVE_PEAK_BODY12(X)         \
  ENCSERVE_PEAK_R3(X, 12, 13, 14) \
  ENCSERVE_PEAK_R3(X, 15, 16, 17) ENCSERVE_PEAK_R3(X, 18, 19, 20) ENCSERVE_PEAK_R3(X, 21, 22, 23)

// Defines `void name(long iters)`: 24 zmm chains (zmm0-23) of Z after `init`.
#define ENCSERVE_PEAK_LOOP_ZMM(name, isa, init, Z)                                              \
  __attribute__((target(isa))) void name(long iters) {                                          \
    __asm__ volatile(init "1:\n\t" ENCSERVE_PEAK_BODY24(Z) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t" \
                     : "+r"(iters)                                                              \
                     :                                                                          \
                     : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",    \
                       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",    \
                       "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",  \
                       "xmm30", "xmm31");                                                       \
  }

// Defines `void name(long iters)`: 12 ymm chains (ymm0-11) of Y after `init`.
#define ENCSERVE_PEAK_LOOP_YMM(name, isa, init, Y)                                              \
  __attribute__((target(isa))) void name(long iters) {                                          \
    __asm__ volatile(init "1:\n\t" ENCSERVE_PEAK_BODY12(Y) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t" \
                     : "+r"(iters)                                                              \
                     :                                                                          \
                     : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",    \
                       "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15");                     \
  }
