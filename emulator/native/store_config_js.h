// Conversions between JS option objects and the store's C++ types, shared by
// the EmuStore and EmuSubsystem bindings.
#pragma once

#include <napi.h>

#include <vector>

#include "store.h"

namespace offpath {

// { kind: 'memory' | 'file' | 'block', paths?: string[], sizeBytes?, chunkBytes?, create? }
emu::StoreConfig ParseStoreConfig(const Napi::Object& options);

// [{ nsid, sizeBlocks, blockBytes, allocatedBlocks, uuid, nguid, attached }]
Napi::Array NamespacesToJs(Napi::Env env, const std::vector<emu::NamespaceInfo>& namespaces);

}  // namespace offpath
