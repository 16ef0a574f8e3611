// A multi-threaded exerciser for a Store: the data path is meant to be
// called from several poller threads at once, which JS alone cannot do, so
// tests drive it from here. Every thread checks the data it owns; any
// interference between threads (a write landing in a chunk that was freed
// and handed to someone else, a lost update, a wrong zero) shows up as a
// mismatch.
#pragma once

#include <cstdint>
#include <string>

#include "store.h"

namespace offpath::emu {

struct StressConfig {
  uint32_t nsid = 0;       // an existing namespace, whose contents are overwritten
  uint32_t threads = 4;
  uint32_t duration_ms = 500;
  uint32_t seed = 1;
};

struct StressResult {
  uint64_t operations = 0;
  uint64_t chunk_frees = 0;  // whole-chunk deallocations issued
  std::string error;         // empty when every check passed
};

StressResult RunStoreStress(Store* store, const StressConfig& config);

}  // namespace offpath::emu
