// Conversions between JS option objects and the store's C++ types, shared by
// the EmuStore and EmuSubsystem bindings.
#pragma once

#include <napi.h>

#include <vector>

#include "store.h"

namespace offpath {

// { kind: 'memory' | 'file' | 'block', paths?: string[], sizeBytes?, chunkBytes?, create?,
//   powerLoss?, faults? }
emu::StoreConfig ParseStoreConfig(const Napi::Object& options);

// The test modes alone (docs/emulator-store.md, "Power-loss simulation"):
//   powerLoss?: true | { seed?, cutAfterWrites?, cutWithinWrites?, tear?, survive?,
//                        tearBytes?, inOrder?, cacheBytes?, exitCode? }
//   faults?: { mediaErrors?: [{ nsid, lba, blocks?, kind? }], delayUs?, delayNsid?, brokenFlush? }
void ParseTestModes(const Napi::Object& options, emu::StoreConfig* config);

// 'read' | 'write' | 'both' (default) into spec->read / spec->write.
void ParseMediaErrorKind(Napi::Env env, const Napi::Value& kind, emu::MediaErrorSpec* spec);

// [{ nsid, sizeBlocks, blockBytes, allocatedBlocks, uuid, nguid, attached }]
Napi::Array NamespacesToJs(Napi::Env env, const std::vector<emu::NamespaceInfo>& namespaces);

}  // namespace offpath
