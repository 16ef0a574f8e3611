// Two implementations behind one function: the SSE4.2 crc32 instruction when
// the CPU has it (checked once), else a byte-at-a-time table. Both compute the
// reflected CRC32C with the usual pre- and post-inversion.
#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace offpath::emu {
namespace {

constexpr uint32_t kPolynomialReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kPolynomialReflected : 0u);
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

uint32_t UpdateTable(uint32_t state, const uint8_t* bytes, size_t length) {
  for (size_t i = 0; i < length; ++i) state = kTable[(state ^ bytes[i]) & 0xffu] ^ (state >> 8);
  return state;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t UpdateHardware(uint32_t state, const uint8_t* bytes,
                                                          size_t length) {
  uint64_t wide = state;
  while (length >= 8) {
    uint64_t word;
    std::memcpy(&word, bytes, 8);  // unaligned-safe load
    wide = _mm_crc32_u64(wide, word);
    bytes += 8;
    length -= 8;
  }
  auto narrow = static_cast<uint32_t>(wide);
  while (length > 0) {
    narrow = _mm_crc32_u8(narrow, *bytes++);
    --length;
  }
  return narrow;
}

bool HaveHardware() {
  static const bool have = [] {
    __builtin_cpu_init();  // may run before libgcc's own initialiser
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}
#endif

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t length_bytes) {
  auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t state = ~crc;
#if defined(__x86_64__)
  if (HaveHardware()) return ~UpdateHardware(state, bytes, length_bytes);
#endif
  return ~UpdateTable(state, bytes, length_bytes);
}

uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t length_bytes) {
  return ~UpdateTable(~crc, static_cast<const uint8_t*>(data), length_bytes);
}

}  // namespace offpath::emu
