// Errors thrown by the addon: a StorageError carrying the errno name as .code
// (the JS class is handed to the addon by libstorage at load time), or a
// TypeError/RangeError for bad arguments. Nothing here ever returns -1 silently.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace offpath {

// Throws StorageError{code: "E...", errno, syscall} for the current errno.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err);
[[noreturn]] void ThrowStorage(Napi::Env env, const char* code, const std::string& message);
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

// Argument readers: each throws a TypeError/RangeError naming the argument.
int32_t ArgFd(const Napi::CallbackInfo& info, size_t index, const char* name);
int64_t ArgInteger(const Napi::CallbackInfo& info, size_t index, const char* name,
                   int64_t min, int64_t max);
int64_t OptInteger(const Napi::CallbackInfo& info, size_t index, const char* name,
                   int64_t min, int64_t max, int64_t fallback);
std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name);
bool OptBool(const Napi::Object& options, const char* key, bool fallback);
// options[key] as an integer in [min, max], or fallback when absent.
int64_t OptInt(const Napi::Object& options, const char* key, int64_t min, int64_t max, int64_t fallback);

// The bytes behind an ArrayBuffer, a typed array or a DataView.
struct ByteSpan {
  uint8_t* data;
  size_t length;
};
ByteSpan ArgBytes(const Napi::CallbackInfo& info, size_t index, const char* name);

}  // namespace offpath
