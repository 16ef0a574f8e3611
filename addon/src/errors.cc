#include "errors.h"

#include <string.h>

#include <limits>

#include "addon_state.h"
#include "registry.h"

namespace offpath {
namespace {

// Set once by libstorage so native errors are instances of the same
// StorageError class the library throws.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowType(info.Env(), "setErrorClass: expected a constructor");
  State(info.Env())->storage_error = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

[[noreturn]] void ThrowObject(Napi::Env env, const char* code, const std::string& message,
                              int err, const char* syscall) {
  Napi::Object error;
  auto& ctor = State(env)->storage_error;
  if (!ctor.IsEmpty()) {
    error = ctor.New({Napi::String::New(env, code), Napi::String::New(env, message)});
  } else {
    error = Napi::Error::New(env, message).Value();
    error.Set("name", "StorageError");
    error.Set("code", code);
  }
  if (err != 0) error.Set("errno", err);
  if (syscall != nullptr) error.Set("syscall", syscall);
  throw Napi::Error(env, error);
}

}  // namespace

void ThrowErrno(Napi::Env env, const char* syscall, int err) {
  const char* name = strerrorname_np(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  ThrowObject(env, code.c_str(), std::string(syscall) + ": " + code + " (" + strerror(err) + ")",
              err, syscall);
}

void ThrowStorage(Napi::Env env, const char* code, const std::string& message) {
  ThrowObject(env, code, message, 0, nullptr);
}

void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

int64_t ArgInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min,
                   int64_t max) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be an integer");
  double number = value.As<Napi::Number>().DoubleValue();
  if (number != static_cast<double>(static_cast<int64_t>(number)))
    ThrowType(info.Env(), std::string(name) + " must be an integer");
  auto integer = static_cast<int64_t>(number);
  if (integer < min || integer > max)
    ThrowRange(info.Env(), std::string(name) + " must be in [" + std::to_string(min) + ", " +
                               std::to_string(max) + "], got " + std::to_string(integer));
  return integer;
}

int64_t OptInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min,
                   int64_t max, int64_t fallback) {
  if (index >= info.Length() || info[index].IsUndefined()) return fallback;
  return ArgInteger(info, index, name, min, max);
}

int32_t ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<int32_t>(ArgInteger(info, index, name, 0, std::numeric_limits<int32_t>::max()));
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  return info[index].As<Napi::String>().Utf8Value();
}

bool OptBool(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return fallback;
  if (!value.IsBoolean())
    ThrowType(options.Env(), std::string("options.") + key + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

int64_t OptInt(const Napi::Object& options, const char* key, int64_t min, int64_t max, int64_t fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return fallback;
  std::string name = std::string("options.") + key;
  if (!value.IsNumber()) ThrowType(options.Env(), name + " must be an integer");
  double number = value.As<Napi::Number>().DoubleValue();
  if (number != static_cast<double>(static_cast<int64_t>(number))) ThrowType(options.Env(), name + " must be an integer");
  auto integer = static_cast<int64_t>(number);
  if (integer < min || integer > max)
    ThrowRange(options.Env(), name + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return integer;
}

ByteSpan ArgBytes(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (value.IsArrayBuffer()) {
    auto buffer = value.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(buffer.Data()), buffer.ByteLength()};
  }
  if (value.IsTypedArray()) {
    auto array = value.As<Napi::TypedArray>();
    auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data());
    return {base == nullptr ? nullptr : base + array.ByteOffset(), array.ByteLength()};
  }
  if (value.IsDataView()) {
    auto view = value.As<Napi::DataView>();
    auto* base = static_cast<uint8_t*>(view.ArrayBuffer().Data());
    return {base == nullptr ? nullptr : base + view.ByteOffset(), view.ByteLength()};
  }
  ThrowType(info.Env(), std::string(name) + " must be an ArrayBuffer, a typed array or a DataView");
}

AddonState* State(Napi::Env env) {
  auto* state = env.GetInstanceData<AddonState>();
  if (state == nullptr) {
    state = new AddonState();
    env.SetInstanceData(state);
  }
  return state;
}

void RegisterErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

}  // namespace offpath
