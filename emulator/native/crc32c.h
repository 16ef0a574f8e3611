// CRC32C (Castagnoli), the checksum of every metadata block the store writes.
// Chosen because x86 computes it in hardware (SSE4.2) and it detects torn and
// bit-rotted metadata far better than a simple sum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace offpath::emu {

// Continues a CRC: pass 0 to start, or a previous result to extend it over
// more bytes (Crc32c(Crc32c(0, a), b) == Crc32c(0, a ++ b)).
uint32_t Crc32c(uint32_t crc, const void* data, size_t length_bytes);

// The table implementation alone, so tests can check both give one answer.
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t length_bytes);

}  // namespace offpath::emu
