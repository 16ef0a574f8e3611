// JS binding of the emulated subsystem: EmuSubsystem. The emulator process
// (emulator/*.ts) owns the sockets and hands the native side only integers
// and file descriptors; every command runs on the native poller threads.
#include <unistd.h>

#include <memory>

#include "errors.h"
#include "registry.h"
#include "store_binding.h"
#include "store_config_js.h"
#include "subsystem.h"

namespace offpath {
namespace {

using emu::Subsystem;

class EmuSubsystem : public Napi::ObjectWrap<EmuSubsystem> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EmuSubsystem",
                       {InstanceAccessor<&EmuSubsystem::ControllerCount>("controllerCount"),
                        InstanceMethod<&EmuSubsystem::BarFd>("barFd"),
                        InstanceMethod<&EmuSubsystem::WakeFd>("wakeFd"),
                        InstanceMethod<&EmuSubsystem::MapDma>("mapDma"),
                        InstanceMethod<&EmuSubsystem::UnmapDma>("unmapDma"),
                        InstanceMethod<&EmuSubsystem::SetInterruptFd>("setInterruptFd"),
                        InstanceMethod<&EmuSubsystem::DetachHost>("detachHost"),
                        InstanceMethod<&EmuSubsystem::InjectFatal>("injectFatal"),
                        InstanceMethod<&EmuSubsystem::Stats>("stats"),
                        InstanceMethod<&EmuSubsystem::Namespaces>("namespaces"),
                        InstanceMethod<&EmuSubsystem::Close>("close")});
  }

  // new EmuSubsystem({ store: {...} | EmuStore, secondaryControllers, pollers, spinUs, flexibleVq, flexibleVi })
  explicit EmuSubsystem(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EmuSubsystem>(info) {
    auto env = info.Env();
    if (!info[0].IsObject()) ThrowType(env, "EmuSubsystem: options must be an object");
    auto options = info[0].As<Napi::Object>();
    emu::SubsystemConfig config;
    if (!options.Get("store").IsObject()) ThrowType(env, "options.store must be an object");
    // An EmuStore object is served as it is (shared: tests keep cutting its
    // power); anything else is a store configuration to open.
    config.shared_store = emu::StoreFromValue(options.Get("store"));
    if (!config.shared_store) config.store = ParseStoreConfig(options.Get("store").As<Napi::Object>());
    config.secondary_controllers = static_cast<uint16_t>(OptInt(options, "secondaryControllers", 0, 127, 4));
    config.pollers = static_cast<uint16_t>(OptInt(options, "pollers", 1, 64, 1));
    config.spin_us = static_cast<uint32_t>(OptInt(options, "spinUs", 0, 1'000'000, 50));
    config.flexible_vq = static_cast<uint16_t>(OptInt(options, "flexibleVq", 0, 65535, 0));
    config.flexible_vi = static_cast<uint16_t>(OptInt(options, "flexibleVi", 0, 65535, 0));
    std::string error;
    subsystem_ = Subsystem::Create(config, &error);
    if (!subsystem_) ThrowStorage(env, "EINVAL", "emulator: " + error);
  }

 private:
  Subsystem& Live(Napi::Env env) {
    if (!subsystem_) ThrowStorage(env, "ECLOSED", "the emulated subsystem is closed");
    return *subsystem_;
  }

  emu::Controller& ControllerArg(const Napi::CallbackInfo& info) {
    Subsystem& subsystem = Live(info.Env());
    auto cntlid = ArgInteger(info, 0, "cntlid", 0, static_cast<int64_t>(subsystem.controller_count()) - 1);
    return *subsystem.controller(static_cast<uint32_t>(cntlid));
  }

  void Check(Napi::Env env, const std::string& code, const std::string& message) {
    if (!code.empty()) ThrowStorage(env, code.c_str(), message);
  }

  Napi::Value ControllerCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).controller_count()));
  }

  // The BAR memfd stays owned here: send it, do not close it.
  Napi::Value BarFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ControllerArg(info).bar_fd());
  }

  Napi::Value WakeFd(const Napi::CallbackInfo& info) {
    emu::Controller& controller = ControllerArg(info);
    return Napi::Number::New(info.Env(), Live(info.Env()).wake_fd(controller.cntlid()));
  }

  // mapDma(cntlid, fd, iova, lengthBytes): maps the host's sealed memfd; the
  // caller may close fd afterwards (the mapping keeps the memory).
  Napi::Value MapDma(const Napi::CallbackInfo& info) {
    emu::Controller& controller = ControllerArg(info);
    int fd = ArgFd(info, 1, "fd");
    auto iova = static_cast<uint64_t>(ArgInteger(info, 2, "iova", 0, int64_t{1} << 52));
    auto length = static_cast<uint64_t>(ArgInteger(info, 3, "lengthBytes", 1, int64_t{1} << 40));
    std::string error;
    Check(info.Env(), controller.MapDma(iova, length, fd, &error), error);
    return info.Env().Undefined();
  }

  Napi::Value UnmapDma(const Napi::CallbackInfo& info) {
    emu::Controller& controller = ControllerArg(info);
    auto iova = static_cast<uint64_t>(ArgInteger(info, 1, "iova", 0, int64_t{1} << 52));
    std::string error;
    Check(info.Env(), controller.UnmapDma(iova, &error), error);
    return info.Env().Undefined();
  }

  // setInterruptFd(cntlid, vector, fd): on success the controller owns fd;
  // on failure it stays the caller's (who closes it, once).
  Napi::Value SetInterruptFd(const Napi::CallbackInfo& info) {
    emu::Controller& controller = ControllerArg(info);
    auto vector = static_cast<uint16_t>(ArgInteger(info, 1, "vector", 0, 65535));
    int fd = ArgFd(info, 2, "fd");
    std::string error;
    Check(info.Env(), controller.SetInterruptFd(vector, fd, &error), error);
    return info.Env().Undefined();
  }

  Napi::Value DetachHost(const Napi::CallbackInfo& info) {
    ControllerArg(info).DetachHost();
    return info.Env().Undefined();
  }

  // Test hook: the controller reports a fatal status (CSTS.CFS) at its next poll.
  Napi::Value InjectFatal(const Napi::CallbackInfo& info) {
    ControllerArg(info).InjectFatal();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    emu::Controller& controller = ControllerArg(info);
    emu::ControllerStats s = controller.stats();
    auto result = Napi::Object::New(env);
    auto put = [&](const char* key, uint64_t value) { result.Set(key, static_cast<double>(value)); };
    put("commands", s.commands);
    put("adminCommands", s.admin_commands);
    put("readCommands", s.read_commands);
    put("writeCommands", s.write_commands);
    put("readBytes", s.read_bytes);
    put("writtenBytes", s.written_bytes);
    put("mediaErrors", s.media_errors);
    put("invalidDoorbellWrites", s.invalid_doorbell_writes);
    put("busyNs", s.busy_ns);
    put("resets", s.resets);
    put("throttledRounds", s.throttled_rounds);
    result.Set("online", controller.online());
    result.Set("assignedVq", controller.assigned_vq());
    result.Set("assignedVi", controller.assigned_vi());
    auto rejections = Napi::Object::New(env);
    for (const auto& [status, count] : controller.rejections()) {
      const char* name = nvme::statusName(emu::status::TypeOf(status), emu::status::CodeOf(status));
      std::string key = name != nullptr ? name : "SCT" + std::to_string(emu::status::TypeOf(status)) + "_SC" + std::to_string(emu::status::CodeOf(status));
      rejections.Set(key, static_cast<double>(count));
    }
    result.Set("rejections", rejections);
    return result;
  }

  Napi::Value Namespaces(const Napi::CallbackInfo& info) {
    return NamespacesToJs(info.Env(), Live(info.Env()).store().Namespaces());
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    subsystem_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<Subsystem> subsystem_;
};

}  // namespace

void RegisterEmuController(Napi::Env env, Napi::Object exports) {
  exports.Set("EmuSubsystem", EmuSubsystem::Define(env));
}

}  // namespace offpath
