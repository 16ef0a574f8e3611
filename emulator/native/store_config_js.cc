#include "store_config_js.h"

#include <cstdio>

#include "errors.h"
#include "store_ids.h"

namespace offpath {

emu::StoreConfig ParseStoreConfig(const Napi::Object& options) {
  auto env = options.Env();
  emu::StoreConfig config;
  Napi::Value kind = options.Get("kind");
  if (!kind.IsString()) ThrowType(env, "options.kind must be 'memory', 'file' or 'block'");
  std::string kind_name = kind.As<Napi::String>().Utf8Value();
  if (kind_name == "memory") config.kind = emu::BackendKind::kMemory;
  else if (kind_name == "file") config.kind = emu::BackendKind::kFile;
  else if (kind_name == "block") config.kind = emu::BackendKind::kBlockDevice;
  else ThrowRange(env, "options.kind must be 'memory', 'file' or 'block', got '" + kind_name + "'");

  Napi::Value paths = options.Get("paths");
  if (!paths.IsUndefined()) {
    if (!paths.IsArray()) ThrowType(env, "options.paths must be an array of strings");
    auto array = paths.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value path = array.Get(i);
      if (!path.IsString()) ThrowType(env, "options.paths must be an array of strings");
      config.paths.push_back(path.As<Napi::String>().Utf8Value());
    }
  }

  config.size_bytes = static_cast<uint64_t>(OptInt(options, "sizeBytes", 0, (int64_t{1} << 53) - 1, 0));
  // 0: the pool's own chunk size (1 MiB when formatting a new pool).
  config.chunk_bytes = static_cast<uint32_t>(OptInt(options, "chunkBytes", 0, int64_t{1} << 30, 0));
  config.create = OptBool(options, "create", true);
  return config;
}

namespace {

}  // namespace

Napi::Array NamespacesToJs(Napi::Env env, const std::vector<emu::NamespaceInfo>& namespaces) {
  auto result = Napi::Array::New(env, namespaces.size());
  for (size_t i = 0; i < namespaces.size(); i++) {
    const emu::NamespaceInfo& info = namespaces[i];
    auto entry = Napi::Object::New(env);
    entry.Set("nsid", info.nsid);
    entry.Set("sizeBlocks", static_cast<double>(info.size_blocks));
    entry.Set("blockBytes", info.block_bytes);
    entry.Set("allocatedBlocks", static_cast<double>(info.allocated_blocks));
    entry.Set("uuid", emu::HexString(info.uuid, sizeof info.uuid));
    entry.Set("nguid", emu::HexString(info.nguid, sizeof info.nguid));
    auto attached = Napi::Array::New(env, info.attached_controllers.size());
    for (size_t j = 0; j < info.attached_controllers.size(); j++)
      attached.Set(static_cast<uint32_t>(j), info.attached_controllers[j]);
    entry.Set("attached", attached);
    result.Set(static_cast<uint32_t>(i), entry);
  }
  return result;
}

}  // namespace offpath
