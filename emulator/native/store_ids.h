// Random identifiers (store, member and namespace uuids, NGUIDs) and their
// text form, shared by the store and its JS binding.
#pragma once

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

namespace offpath::emu {

// Fills bytes from the kernel's random source; false if it cannot.
inline bool FillRandom(uint8_t* bytes, size_t length) {
  size_t done = 0;
  while (done < length) {
    ssize_t got = getrandom(bytes + done, length - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(got);
  }
  return true;
}

// Lower-case hex, two digits per byte, no separators.
inline std::string HexString(const uint8_t* bytes, size_t length) {
  static const char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(length * 2);
  for (size_t i = 0; i < length; ++i) {
    text += kDigits[bytes[i] >> 4];
    text += kDigits[bytes[i] & 15];
  }
  return text;
}

}  // namespace offpath::emu
