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
  ParseTestModes(options, &config);
  return config;
}

namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

double OptUnit(const Napi::Object& options, const char* key, double fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return fallback;
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(number >= 0 && number <= 1))
    ThrowRange(options.Env(), std::string("options.") + key + " must be a number from 0 to 1");
  return number;
}

}  // namespace

void ParseMediaErrorKind(Napi::Env env, const Napi::Value& kind, emu::MediaErrorSpec* spec) {
  std::string name = kind.IsUndefined() ? "both" : kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
  if (name != "read" && name != "write" && name != "both")
    ThrowRange(env, "a media error's kind must be 'read', 'write' or 'both'");
  spec->read = name != "write";
  spec->write = name != "read";
}

void ParseTestModes(const Napi::Object& options, emu::StoreConfig* config) {
  auto env = options.Env();
  Napi::Value power = options.Get("powerLoss");
  if (power.IsBoolean()) {
    config->power_loss.enabled = power.As<Napi::Boolean>().Value();
  } else if (power.IsObject()) {
    auto object = power.As<Napi::Object>();
    emu::PowerLossConfig& loss = config->power_loss;
    loss.enabled = true;
    loss.seed = static_cast<uint64_t>(OptInt(object, "seed", 0, kMaxSafeInteger, 1));
    loss.cut_after_writes = static_cast<uint64_t>(OptInt(object, "cutAfterWrites", 0, kMaxSafeInteger, 0));
    loss.cut_within_writes = static_cast<uint64_t>(OptInt(object, "cutWithinWrites", 0, kMaxSafeInteger, 0));
    loss.tear = OptBool(object, "tear", true);
    loss.survive = OptUnit(object, "survive", 0.5);
    loss.tear_bytes = static_cast<uint32_t>(OptInt(object, "tearBytes", 512, 1 << 20, 4096));
    loss.in_order = OptBool(object, "inOrder", false);
    loss.cache_bytes = static_cast<uint64_t>(OptInt(object, "cacheBytes", 4096, kMaxSafeInteger, loss.cache_bytes));
    loss.exit_code = static_cast<int>(OptInt(object, "exitCode", -1, 255, -1));
  } else if (!power.IsUndefined()) {
    ThrowType(env, "options.powerLoss must be a boolean or an object");
  }

  Napi::Value faults = options.Get("faults");
  if (faults.IsUndefined()) return;
  if (!faults.IsObject()) ThrowType(env, "options.faults must be an object");
  auto object = faults.As<Napi::Object>();
  Napi::Value errors = object.Get("mediaErrors");
  if (!errors.IsUndefined()) {
    if (!errors.IsArray()) ThrowType(env, "options.faults.mediaErrors must be an array");
    auto array = errors.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value item = array.Get(i);
      if (!item.IsObject()) ThrowType(env, "options.faults.mediaErrors[] must be objects { nsid, lba, blocks?, kind? }");
      auto error = item.As<Napi::Object>();
      emu::MediaErrorSpec spec;
      spec.nsid = static_cast<uint32_t>(OptInt(error, "nsid", 1, 0xffffffffll, 1));
      spec.lba = static_cast<uint64_t>(OptInt(error, "lba", 0, kMaxSafeInteger, 0));
      spec.blocks = static_cast<uint64_t>(OptInt(error, "blocks", 1, kMaxSafeInteger, 1));
      ParseMediaErrorKind(env, error.Get("kind"), &spec);
      config->faults.media_errors.push_back(spec);
    }
  }
  config->faults.delay_us = static_cast<uint32_t>(OptInt(object, "delayUs", 0, 60'000'000, 0));
  config->faults.delay_nsid = static_cast<uint32_t>(OptInt(object, "delayNsid", 0, 0xffffffffll, 0));
  config->faults.broken_flush = OptBool(object, "brokenFlush", false);
}

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
