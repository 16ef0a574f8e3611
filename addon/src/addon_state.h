// Per-environment state of the addon (each worker thread loads its own copy).
// Node allows one instance-data slot per environment, so every file that needs
// per-environment state keeps it here.
#pragma once
#include <napi.h>

#include <cstddef>
#include <unordered_map>

namespace offpath {

// A live MAP_SHARED mapping handed to JS as an external ArrayBuffer.
struct Mapping {
  void* address;
  size_t length_bytes;
  bool mapped;
};

struct AddonState {
  Napi::FunctionReference storage_error;
  // Mappings by base address, so munmap(arrayBuffer) can find and detach them.
  std::unordered_map<void*, Mapping*> mappings;
};

AddonState* State(Napi::Env env);

// Hands a fresh MAP_SHARED mapping to JS; munmap(arrayBuffer) or GC unmaps it.
Napi::ArrayBuffer WrapMapping(Napi::Env env, void* address, size_t length_bytes);

}  // namespace offpath
