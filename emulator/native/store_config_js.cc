#include "store_config_js.h"

#include <cstdio>

#include "errors.h"

namespace offpath {

emu::StoreConfig ParseStoreConfig(const Napi::Object& options) {
  auto env = options.Env();
  emu::StoreConfig config;
  Napi::Value kind = options.Get("kind");
  std::string kind_name = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
  if (kind_name == "memory") config.kind = emu::BackendKind::kMemory;
  else if (kind_name == "file") config.kind = emu::BackendKind::kFile;
  else if (kind_name == "block") config.kind = emu::BackendKind::kBlockDevice;
  else ThrowType(env, "store.kind must be 'memory', 'file' or 'block'");

  Napi::Value paths = options.Get("paths");
  if (!paths.IsUndefined()) {
    if (!paths.IsArray()) ThrowType(env, "store.paths must be an array of strings");
    auto array = paths.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value path = array.Get(i);
      if (!path.IsString()) ThrowType(env, "store.paths must be an array of strings");
      config.paths.push_back(path.As<Napi::String>().Utf8Value());
    }
  }
  if (config.kind != emu::BackendKind::kMemory && config.paths.empty())
    ThrowType(env, "store.paths must name at least one file or device");

  auto number = [&](const char* key, double fallback, double min, double max) {
    Napi::Value value = options.Get(key);
    if (value.IsUndefined()) return fallback;
    if (!value.IsNumber()) ThrowType(env, std::string("store.") + key + " must be a number");
    double n = value.As<Napi::Number>().DoubleValue();
    if (n < min || n > max || n != static_cast<double>(static_cast<uint64_t>(n)))
      ThrowRange(env, std::string("store.") + key + " is out of range");
    return n;
  };
  config.size_bytes = static_cast<uint64_t>(number("sizeBytes", 0, 0, 9007199254740991.0));
  config.chunk_bytes = static_cast<uint32_t>(number("chunkBytes", 1 << 20, 4096, 1 << 30));
  Napi::Value create = options.Get("create");
  if (!create.IsUndefined()) {
    if (!create.IsBoolean()) ThrowType(env, "store.create must be a boolean");
    config.create = create.As<Napi::Boolean>().Value();
  }
  return config;
}

namespace {
std::string Hex(const uint8_t* bytes, size_t length) {
  std::string out(length * 2, '0');
  for (size_t i = 0; i < length; i++) snprintf(&out[i * 2], 3, "%02x", bytes[i]);
  return out;
}
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
    entry.Set("uuid", Hex(info.uuid, sizeof info.uuid));
    entry.Set("nguid", Hex(info.nguid, sizeof info.nguid));
    auto attached = Napi::Array::New(env, info.attached_controllers.size());
    for (size_t j = 0; j < info.attached_controllers.size(); j++)
      attached.Set(static_cast<uint32_t>(j), info.attached_controllers[j]);
    entry.Set("attached", attached);
    result.Set(static_cast<uint32_t>(i), entry);
  }
  return result;
}

}  // namespace offpath
