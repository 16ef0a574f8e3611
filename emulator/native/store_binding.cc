// EmuStore: the emulator's backing store as a JS class, for tests and tools.
//
// Data calls (read, write, deallocate, writeZeroes, flush) return the NVMe
// status as a number, (SCT << 8) | SC, 0 for success — exactly what the
// controller would put in a completion. Metadata calls (createNamespace,
// deleteNamespace, resizeNamespace, attach, detach, setLimits) throw a
// StorageError whose code is the status name (e.g.
// 'NAMESPACE_INSUFFICIENT_CAPACITY') and whose .status holds {sct, sc}.
// Everything after close() throws StorageError 'ECLOSED'.
//
// Test modes (docs/emulator-store.md, "Power-loss simulation and fault
// injection"): new EmuStore({..., powerLoss, faults}), cut() returning an
// image that new EmuStore({ image }) reopens, armCut, powerState, and the
// fault injectors (injectMediaError, setCommandDelay, setBrokenFlush).
#include "store_binding.h"

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "crc32c.h"
#include "errors.h"
#include "registry.h"
#include "store_config_js.h"
#include "store_faults.h"
#include "store_ids.h"
#include "store_power_loss.h"
#include "store_status.h"
#include "store_stress.h"

namespace offpath {
namespace {

using emu::Status;

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;
// Marks objects made by EmuStore so StoreFromValue never unwraps another class.
constexpr napi_type_tag kEmuStoreTag = {0x6f66667061746845ull, 0x6d7553746f726531ull};
// Marks the images cut() returns.
constexpr napi_type_tag kImageTag = {0x6f66667061746845ull, 0x6d75496d61676531ull};

const char* KindName(emu::BackendKind kind) {
  switch (kind) {
    case emu::BackendKind::kMemory:
      return "memory";
    case emu::BackendKind::kFile:
      return "file";
    case emu::BackendKind::kBlockDevice:
      return "block";
  }
  return "memory";
}

// The members a power cut left behind, held by a JS image object until a
// new EmuStore({ image }) takes them (or image.close() releases them).
struct ImageHolder {
  emu::BackendKind kind;
  std::vector<std::string> paths;
  uint32_t chunk_bytes;  // as configured (0: the pool's); the default when reopening
  std::vector<std::unique_ptr<emu::BackendMember>> members;
};

ImageHolder* UnwrapImage(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(value.Env(), value, &kImageTag, &tagged) != napi_ok || !tagged) return nullptr;
  void* data = nullptr;
  if (napi_unwrap(value.Env(), value, &data) != napi_ok) return nullptr;
  return static_cast<ImageHolder*>(data);
}

Napi::Object CutReportToJs(Napi::Env env, const emu::CutReport& report) {
  auto out = Napi::Object::New(env);
  out.Set("seed", static_cast<double>(report.seed));
  out.Set("automatic", report.automatic);
  out.Set("atWrite", static_cast<double>(report.at_write));
  out.Set("pendingWrites", static_cast<double>(report.pending_writes));
  out.Set("applied", static_cast<double>(report.applied));
  out.Set("torn", static_cast<double>(report.torn));
  out.Set("dropped", static_cast<double>(report.dropped));
  out.Set("restoredBlocks", static_cast<double>(report.restored_blocks));
  return out;
}

// { kind, paths, members, report, closed, close() }
Napi::Object MakeImage(Napi::Env env, emu::BackendKind kind, const std::vector<std::string>& paths,
                       uint32_t chunk_bytes, std::vector<std::unique_ptr<emu::BackendMember>> members,
                       const emu::CutReport& report) {
  auto image = Napi::Object::New(env);
  auto* holder = new ImageHolder{kind, paths, chunk_bytes, std::move(members)};
  if (napi_wrap(env, image, holder, [](napi_env, void* data, void*) { delete static_cast<ImageHolder*>(data); },
                nullptr, nullptr) != napi_ok) {
    delete holder;
    ThrowStorage(env, "EINVAL", "cannot wrap the power-loss image");
  }
  napi_type_tag_object(env, image, &kImageTag);
  image.Set("kind", KindName(kind));
  auto list = Napi::Array::New(env, paths.size());
  for (size_t i = 0; i < paths.size(); ++i) list.Set(static_cast<uint32_t>(i), paths[i]);
  image.Set("paths", list);
  image.Set("members", static_cast<double>(holder->members.size()));
  image.Set("report", CutReportToJs(env, report));
  image.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, image, "closed", [](const Napi::CallbackInfo& info) -> Napi::Value {
        ImageHolder* held = UnwrapImage(info.This());
        return Napi::Boolean::New(info.Env(), held == nullptr || held->members.empty());
      }));
  image.Set("close", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
              ImageHolder* held = UnwrapImage(info.This());
              if (held != nullptr) held->members.clear();
              return info.Env().Undefined();
            }));
  return image;
}

std::string StatusName(Status value) {
  const char* name = emu::StoreStatusName(value);
  if (name != nullptr) return name;
  char fallback[32];
  snprintf(fallback, sizeof fallback, "SCT%u_SC0x%02x", value >> 8, value & 0xff);
  return fallback;
}

// Metadata calls: success returns, anything else throws.
void ThrowIfFailed(Napi::Env env, Status value, const std::string& what) {
  if (value == emu::status::kSuccess) return;
  std::string name = StatusName(value);
  try {
    ThrowStorage(env, name.c_str(), what + " failed: " + name);
  } catch (Napi::Error& error) {
    auto detail = Napi::Object::New(env);
    detail.Set("sct", value >> 8);
    detail.Set("sc", value & 0xff);
    detail.Set("dnr", false);
    detail.Set("more", false);
    error.Value().Set("status", detail);
    throw;
  }
}

// One buffer, or an array of buffers used as consecutive segments.
std::vector<emu::Segment> ArgSegments(const Napi::CallbackInfo& info, size_t index) {
  std::vector<emu::Segment> segments;
  Napi::Value value = info[index];
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value element = array.Get(i);
      uint8_t* data = nullptr;
      size_t length = 0;
      if (element.IsArrayBuffer()) {
        auto buffer = element.As<Napi::ArrayBuffer>();
        data = static_cast<uint8_t*>(buffer.Data());
        length = buffer.ByteLength();
      } else if (element.IsTypedArray()) {
        auto typed = element.As<Napi::TypedArray>();
        auto* base = static_cast<uint8_t*>(typed.ArrayBuffer().Data());
        data = base == nullptr ? nullptr : base + typed.ByteOffset();
        length = typed.ByteLength();
      } else if (element.IsDataView()) {
        auto view = element.As<Napi::DataView>();
        auto* base = static_cast<uint8_t*>(view.ArrayBuffer().Data());
        data = base == nullptr ? nullptr : base + view.ByteOffset();
        length = view.ByteLength();
      } else {
        ThrowType(info.Env(), "buffer[" + std::to_string(i) + "] must be an ArrayBuffer, a typed array or a DataView");
      }
      segments.push_back({data, length});
    }
    return segments;
  }
  ByteSpan span = ArgBytes(info, index, "buffer");
  segments.push_back({span.data, span.length});
  return segments;
}

class EmuStore : public Napi::ObjectWrap<EmuStore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "EmuStore",
        {InstanceMethod<&EmuStore::CreateNamespace>("createNamespace"),
         InstanceMethod<&EmuStore::DeleteNamespace>("deleteNamespace"),
         InstanceMethod<&EmuStore::ResizeNamespace>("resizeNamespace"),
         InstanceMethod<&EmuStore::ListNamespaces>("namespaces"),
         InstanceMethod<&EmuStore::Attach>("attach"),
         InstanceMethod<&EmuStore::Detach>("detach"),
         InstanceMethod<&EmuStore::SetLimits>("setLimits"),
         InstanceMethod<&EmuStore::ListLimits>("limits"),
         InstanceMethod<&EmuStore::Read>("read"),
         InstanceMethod<&EmuStore::Write>("write"),
         InstanceMethod<&EmuStore::Deallocate>("deallocate"),
         InstanceMethod<&EmuStore::WriteZeroes>("writeZeroes"),
         InstanceMethod<&EmuStore::Flush>("flush"),
         InstanceMethod<&EmuStore::Counters>("counters"),
         InstanceMethod<&EmuStore::Close>("close"),
         InstanceMethod<&EmuStore::Stress>("stress"),
         InstanceMethod<&EmuStore::Cut>("cut"),
         InstanceMethod<&EmuStore::ArmCut>("armCut"),
         InstanceMethod<&EmuStore::PowerState>("powerState"),
         InstanceMethod<&EmuStore::InjectMediaError>("injectMediaError"),
         InstanceMethod<&EmuStore::ClearMediaErrors>("clearMediaErrors"),
         InstanceMethod<&EmuStore::SetCommandDelay>("setCommandDelay"),
         InstanceMethod<&EmuStore::SetBrokenFlush>("setBrokenFlush"),
         InstanceAccessor<&EmuStore::PowerLost>("powerLost"),
         InstanceAccessor<&EmuStore::CapacityBytes>("capacityBytes"),
         InstanceAccessor<&EmuStore::FreeBytes>("freeBytes"),
         InstanceAccessor<&EmuStore::ChunkBytes>("chunkBytes"),
         InstanceAccessor<&EmuStore::VolatileWriteCache>("volatileWriteCache"),
         InstanceAccessor<&EmuStore::Closed>("closed"),
         StaticMethod<&EmuStore::Crc32c>("crc32c")});
  }

  // new EmuStore({ kind, paths?, sizeBytes?, chunkBytes?, create?, powerLoss?, faults? })
  // new EmuStore({ image, chunkBytes?, create?, powerLoss?, faults? }): reopens what a cut left.
  explicit EmuStore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EmuStore>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) ThrowType(env, "EmuStore: options must be an object");
    auto options = info[0].As<Napi::Object>();
    emu::StoreConfig config;
    std::vector<std::unique_ptr<emu::BackendMember>> members;
    Napi::Value image = options.Get("image");
    if (!image.IsUndefined()) {
      ImageHolder* holder = UnwrapImage(image);
      if (holder == nullptr) ThrowType(env, "options.image must be an image returned by cut()");
      if (holder->members.empty()) ThrowStorage(env, "ECLOSED", "EmuStore: this image was already opened or closed");
      config.kind = holder->kind;
      config.paths = holder->paths;
      // A pool the cut left blank is formatted again as it was configured.
      config.chunk_bytes =
          static_cast<uint32_t>(OptInt(options, "chunkBytes", 0, int64_t{1} << 30, holder->chunk_bytes));
      config.create = OptBool(options, "create", true);
      ParseTestModes(options, &config);
      members = std::move(holder->members);
      holder->members.clear();
    } else {
      config = ParseStoreConfig(options);
    }
    kind_ = config.kind;
    paths_ = config.paths;
    chunk_bytes_ = config.chunk_bytes;
    std::string message, code;
    std::unique_ptr<emu::Store> store = emu::OpenStoreForTest(config, std::move(members), &supply_, &message, &code);
    if (!store) {
      if (supply_ && supply_->cut()) {
        // The power went off during the open (a format or a recovery was
        // interrupted): hand the image over with the error.
        emu::CutReport report = supply_->stats().last_cut;
        Napi::Object left = MakeImage(env, kind_, paths_, chunk_bytes_, supply_->TakeImage(), report);
        try {
          ThrowStorage(env, "EPOWERLOSS", "EmuStore: the power was cut while opening (" + message + ")");
        } catch (Napi::Error& error) {
          error.Value().Set("image", left);
          throw;
        }
      }
      ThrowStorage(env, code.empty() ? "EINVAL" : code.c_str(), "EmuStore: " + message);
    }
    store_ = std::shared_ptr<emu::Store>(std::move(store));
    napi_type_tag_object(env, Value(), &kEmuStoreTag);
  }

  std::shared_ptr<emu::Store> store() const { return store_; }

 private:
  emu::Store* Open(Napi::Env env) const {
    if (!store_) ThrowStorage(env, "ECLOSED", "EmuStore is closed");
    return store_.get();
  }

  static uint32_t ArgNsid(const Napi::CallbackInfo& info, size_t index) {
    return static_cast<uint32_t>(ArgInteger(info, index, "nsid", 0, 0xffffffffll));
  }

  // The segments must hold exactly blocks * block size of the namespace;
  // for an unknown nsid the store's own status says so.
  void CheckLength(const Napi::CallbackInfo& info, emu::Store* store, uint32_t nsid, uint64_t blocks,
                   const std::vector<emu::Segment>& segments) {
    emu::NamespaceInfo ns;
    if (!store->GetNamespace(nsid, &ns)) return;
    uint64_t total = 0;
    for (const auto& segment : segments) total += segment.length_bytes;
    if (total != blocks * ns.block_bytes)
      ThrowRange(info.Env(), "buffer holds " + std::to_string(total) + " bytes but " + std::to_string(blocks) +
                                 " blocks of namespace " + std::to_string(nsid) + " are " +
                                 std::to_string(blocks * ns.block_bytes));
  }

  Napi::Value CreateNamespace(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    auto size_blocks = static_cast<uint64_t>(ArgInteger(info, 0, "sizeBlocks", 0, kMaxSafeInteger));
    auto block_bytes = static_cast<uint32_t>(ArgInteger(info, 1, "blockBytes", 0, 0xffffffffll));
    uint32_t nsid = 0;
    ThrowIfFailed(info.Env(), store->CreateNamespace(size_blocks, block_bytes, &nsid), "createNamespace");
    return Napi::Number::New(info.Env(), nsid);
  }

  Napi::Value DeleteNamespace(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    ThrowIfFailed(info.Env(), store->DeleteNamespace(nsid), "deleteNamespace(" + std::to_string(nsid) + ")");
    return info.Env().Undefined();
  }

  Napi::Value ResizeNamespace(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto size_blocks = static_cast<uint64_t>(ArgInteger(info, 1, "sizeBlocks", 0, kMaxSafeInteger));
    ThrowIfFailed(info.Env(), store->ResizeNamespace(nsid, size_blocks),
                  "resizeNamespace(" + std::to_string(nsid) + ")");
    return info.Env().Undefined();
  }

  Napi::Value ListNamespaces(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    emu::Store* store = Open(env);
    return NamespacesToJs(env, store->Namespaces());
  }

  Napi::Value Attach(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto cntlid = static_cast<uint16_t>(ArgInteger(info, 1, "cntlid", 0, 0xffff));
    ThrowIfFailed(info.Env(), store->Attach(nsid, cntlid), "attach(" + std::to_string(nsid) + ")");
    return info.Env().Undefined();
  }

  Napi::Value Detach(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto cntlid = static_cast<uint16_t>(ArgInteger(info, 1, "cntlid", 0, 0xffff));
    ThrowIfFailed(info.Env(), store->Detach(nsid, cntlid), "detach(" + std::to_string(nsid) + ")");
    return info.Env().Undefined();
  }

  Napi::Value SetLimits(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    emu::ControllerLimits limits{};
    limits.cntlid = static_cast<uint16_t>(ArgInteger(info, 0, "cntlid", 0, 0xffff));
    limits.iops = static_cast<uint64_t>(ArgInteger(info, 1, "iops", 0, kMaxSafeInteger));
    limits.bytes_per_second = static_cast<uint64_t>(ArgInteger(info, 2, "bytesPerSecond", 0, kMaxSafeInteger));
    ThrowIfFailed(info.Env(), store->SetLimits(limits), "setLimits");
    return info.Env().Undefined();
  }

  Napi::Value ListLimits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    emu::Store* store = Open(env);
    std::vector<emu::ControllerLimits> list = store->Limits();
    auto result = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      auto item = Napi::Object::New(env);
      item.Set("cntlid", list[i].cntlid);
      item.Set("iops", static_cast<double>(list[i].iops));
      item.Set("bytesPerSecond", static_cast<double>(list[i].bytes_per_second));
      result.Set(static_cast<uint32_t>(i), item);
    }
    return result;
  }

  // read(nsid, lba, blocks, buffer | buffer[]) -> status
  Napi::Value Read(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto lba = static_cast<uint64_t>(ArgInteger(info, 1, "lba", 0, kMaxSafeInteger));
    auto blocks = static_cast<uint32_t>(ArgInteger(info, 2, "blocks", 0, 0xffffffffll));
    std::vector<emu::Segment> segments = ArgSegments(info, 3);
    CheckLength(info, store, nsid, blocks, segments);
    return Napi::Number::New(info.Env(), store->Read(nsid, lba, blocks, segments.data(), segments.size()));
  }

  // write(nsid, lba, blocks, buffer | buffer[], fua = false) -> status
  Napi::Value Write(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto lba = static_cast<uint64_t>(ArgInteger(info, 1, "lba", 0, kMaxSafeInteger));
    auto blocks = static_cast<uint32_t>(ArgInteger(info, 2, "blocks", 0, 0xffffffffll));
    std::vector<emu::Segment> segments = ArgSegments(info, 3);
    bool fua = ArgFua(info, 4);
    CheckLength(info, store, nsid, blocks, segments);
    return Napi::Number::New(info.Env(),
                             store->Write(nsid, lba, blocks, segments.data(), segments.size(), fua));
  }

  // deallocate(nsid, lba, blocks) -> status
  Napi::Value Deallocate(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto lba = static_cast<uint64_t>(ArgInteger(info, 1, "lba", 0, kMaxSafeInteger));
    auto blocks = static_cast<uint64_t>(ArgInteger(info, 2, "blocks", 0, kMaxSafeInteger));
    return Napi::Number::New(info.Env(), store->Deallocate(nsid, lba, blocks));
  }

  // writeZeroes(nsid, lba, blocks, fua = false) -> status
  Napi::Value WriteZeroes(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    uint32_t nsid = ArgNsid(info, 0);
    auto lba = static_cast<uint64_t>(ArgInteger(info, 1, "lba", 0, kMaxSafeInteger));
    auto blocks = static_cast<uint64_t>(ArgInteger(info, 2, "blocks", 0, kMaxSafeInteger));
    bool fua = ArgFua(info, 3);
    return Napi::Number::New(info.Env(), store->WriteZeroes(nsid, lba, blocks, fua));
  }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), Open(info.Env())->Flush());
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    emu::StoreCounters counters = Open(env)->counters();
    auto result = Napi::Object::New(env);
    result.Set("flushes", static_cast<double>(counters.flushes));
    result.Set("chunkAllocations", static_cast<double>(counters.chunk_allocations));
    result.Set("chunkFrees", static_cast<double>(counters.chunk_frees));
    result.Set("metadataCommits", static_cast<double>(counters.metadata_commits));
    result.Set("mapPageWrites", static_cast<double>(counters.map_page_writes));
    result.Set("dirtyChunkZeroings", static_cast<double>(counters.dirty_chunk_zeroings));
    return result;
  }

  // stress({ nsid, threads?, durationMs?, seed? }) -> { operations, chunkFrees, error }
  // Hammers one namespace (overwriting it) from several native threads and
  // checks every byte; blocks the calling JS thread for durationMs.
  Napi::Value Stress(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    emu::Store* store = Open(env);
    if (!info[0].IsObject()) ThrowType(env, "stress: options must be an object");
    auto options = info[0].As<Napi::Object>();
    emu::StressConfig config;
    config.nsid = static_cast<uint32_t>(OptInt(options, "nsid", 1, emu::kMaxNamespaces, 1));
    config.threads = static_cast<uint32_t>(OptInt(options, "threads", 1, 64, 4));
    config.duration_ms = static_cast<uint32_t>(OptInt(options, "durationMs", 1, 600000, 500));
    config.seed = static_cast<uint32_t>(OptInt(options, "seed", 0, 0xffffffffll, 1));
    emu::StressResult result = emu::RunStoreStress(store, config);
    auto out = Napi::Object::New(env);
    out.Set("operations", static_cast<double>(result.operations));
    out.Set("chunkFrees", static_cast<double>(result.chunk_frees));
    out.Set("error", result.error);
    return out;
  }

  emu::PowerSupply* Supply(Napi::Env env) const {
    if (!supply_) ThrowStorage(env, "EINVAL", "EmuStore: not opened with powerLoss");
    return supply_.get();
  }

  // cut({ seed?, tear?, survive?, inOrder? }) -> image. Cuts the power (or, when an
  // automatic cut already did, takes that cut's image): the store is closed
  // and the image holds exactly the durable state plus the surviving writes.
  Napi::Value Cut(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    emu::PowerSupply* supply = Supply(env);
    if (!store_ && !supply->cut()) ThrowStorage(env, "ECLOSED", "EmuStore is closed");
    emu::CutOptions options = supply->AutomaticCutOptions();
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      if (!info[0].IsObject()) ThrowType(env, "cut: options must be an object");
      auto object = info[0].As<Napi::Object>();
      options.seed = static_cast<uint64_t>(OptInt(object, "seed", 0, kMaxSafeInteger, static_cast<int64_t>(options.seed & kMaxSafeInteger)));
      options.tear = OptBool(object, "tear", options.tear);
      options.in_order = OptBool(object, "inOrder", options.in_order);
      Napi::Value survive = object.Get("survive");
      if (!survive.IsUndefined()) {
        double value = survive.IsNumber() ? survive.As<Napi::Number>().DoubleValue() : -1;
        if (!(value >= 0 && value <= 1)) ThrowRange(env, "cut: survive must be a number from 0 to 1");
        options.survive = value;
      }
    }
    emu::CutReport report;
    if (!supply->Cut(options, &report)) report = supply->stats().last_cut;
    store_.reset();  // dead now: its closing flush fails harmlessly
    std::vector<std::unique_ptr<emu::BackendMember>> members = supply->TakeImage();
    if (members.empty()) ThrowStorage(env, "ECLOSED", "cut: the image of this cut was already taken");
    return MakeImage(env, kind_, paths_, chunk_bytes_, std::move(members), report);
  }

  // armCut(writes): the power goes off right after that many more member
  // writes (0 disarms); the call that made the last one sees it fail or not.
  Napi::Value ArmCut(const Napi::CallbackInfo& info) {
    emu::PowerSupply* supply = Supply(info.Env());
    supply->ArmCut(static_cast<uint64_t>(ArgInteger(info, 0, "writes", 0, kMaxSafeInteger)));
    return info.Env().Undefined();
  }

  Napi::Value PowerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Object::New(env);
    out.Set("enabled", static_cast<bool>(supply_));
    if (!supply_) return out;
    emu::PowerLossStats stats = supply_->stats();
    out.Set("cut", stats.cut);
    out.Set("tearBytes", stats.tear_bytes);
    out.Set("writes", static_cast<double>(stats.writes));
    out.Set("volatileWrites", static_cast<double>(stats.volatile_writes));
    out.Set("durableWrites", static_cast<double>(stats.durable_writes));
    out.Set("syncs", static_cast<double>(stats.syncs));
    out.Set("writtenBack", static_cast<double>(stats.written_back));
    out.Set("pendingWrites", static_cast<double>(stats.pending_writes));
    out.Set("pendingBytes", static_cast<double>(stats.pending_bytes));
    out.Set("dirtyBlocks", static_cast<double>(stats.dirty_blocks));
    out.Set("cutAt", static_cast<double>(stats.cut_at));
    out.Set("lastCut", stats.has_cut ? Napi::Value(CutReportToJs(env, stats.last_cut)) : env.Null());
    return out;
  }

  Napi::Value PowerLost(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), supply_ && supply_->cut());
  }

  // injectMediaError(nsid, lba, kind = 'both', blocks = 1)
  Napi::Value InjectMediaError(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    emu::MediaErrorSpec spec;
    spec.nsid = ArgNsid(info, 0);
    spec.lba = static_cast<uint64_t>(ArgInteger(info, 1, "lba", 0, kMaxSafeInteger));
    ParseMediaErrorKind(info.Env(), info[2], &spec);
    spec.blocks = static_cast<uint64_t>(OptInteger(info, 3, "blocks", 1, kMaxSafeInteger, 1));
    store->faults()->AddMediaError(spec);
    return info.Env().Undefined();
  }

  // clearMediaErrors(nsid = 0 /* all */)
  Napi::Value ClearMediaErrors(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    store->faults()->ClearMediaErrors(static_cast<uint32_t>(OptInteger(info, 0, "nsid", 0, 0xffffffffll, 0)));
    return info.Env().Undefined();
  }

  // setCommandDelay(microseconds, nsid = 0 /* every namespace */)
  Napi::Value SetCommandDelay(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    auto delay = static_cast<uint32_t>(ArgInteger(info, 0, "microseconds", 0, 60'000'000));
    auto nsid = static_cast<uint32_t>(OptInteger(info, 1, "nsid", 0, 0xffffffffll, 0));
    store->faults()->SetDelay(delay, nsid);
    return info.Env().Undefined();
  }

  // setBrokenFlush(on): Flush and FUA succeed without making anything durable (test only).
  Napi::Value SetBrokenFlush(const Napi::CallbackInfo& info) {
    emu::Store* store = Open(info.Env());
    if (info.Length() < 1 || !info[0].IsBoolean()) ThrowType(info.Env(), "setBrokenFlush: on must be a boolean");
    store->faults()->SetBrokenFlush(info[0].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  }

  // Releases this object's hold on the store; the store itself closes
  // (flushing) once no controller holds it either.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Open(info.Env());
    store_.reset();
    return info.Env().Undefined();
  }

  Napi::Value CapacityBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->capacity_bytes()));
  }
  Napi::Value FreeBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Open(info.Env())->free_bytes()));
  }
  Napi::Value ChunkBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), Open(info.Env())->chunk_bytes());
  }
  Napi::Value VolatileWriteCache(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), Open(info.Env())->volatile_write_cache());
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !store_); }

  // EmuStore.crc32c(bytes, { portable? }) -> unsigned CRC32C, for tests.
  static Napi::Value Crc32c(const Napi::CallbackInfo& info) {
    ByteSpan span = ArgBytes(info, 0, "bytes");
    bool portable = info.Length() > 1 && info[1].IsObject() && OptBool(info[1].As<Napi::Object>(), "portable", false);
    uint32_t crc = portable ? emu::Crc32cPortable(0, span.data, span.length) : emu::Crc32c(0, span.data, span.length);
    return Napi::Number::New(info.Env(), crc);
  }

  static bool ArgFua(const Napi::CallbackInfo& info, size_t index) {
    if (index >= info.Length() || info[index].IsUndefined()) return false;
    if (!info[index].IsBoolean()) ThrowType(info.Env(), "fua must be a boolean");
    return info[index].As<Napi::Boolean>().Value();
  }

  std::shared_ptr<emu::Store> store_;
  std::shared_ptr<emu::PowerSupply> supply_;  // power-loss mode only
  emu::BackendKind kind_ = emu::BackendKind::kMemory;
  std::vector<std::string> paths_;
  uint32_t chunk_bytes_ = 0;
};

}  // namespace

void RegisterEmuStore(Napi::Env env, Napi::Object exports) {
  exports.Set("EmuStore", EmuStore::Define(env));
}

namespace emu {

std::shared_ptr<Store> StoreFromValue(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(value.Env(), value, &kEmuStoreTag, &tagged) != napi_ok || !tagged) return nullptr;
  EmuStore* wrapper = EmuStore::Unwrap(value.As<Napi::Object>());
  return wrapper == nullptr ? nullptr : wrapper->store();
}

}  // namespace emu
}  // namespace offpath
