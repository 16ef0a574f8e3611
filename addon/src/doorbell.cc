// Ordered 32-bit stores and loads into mapped memory (doorbells, register
// pages, shared counters). Each says which other access it orders against:
//
//  store32Release  everything written before (the SQE bytes in the ring) is
//                  visible before the new doorbell value. A release fence,
//                  then a volatile store (a single plain store on x86, whose
//                  stores are already ordered; dmb/dsb-class on weaker CPUs).
//  store32Fenced   the store, then a full fence: orders the doorbell store
//                  before any later load. Needed for the "ring, then check
//                  whether the poller sleeps" handshake: without it the load
//                  may pass the store and both sides miss each other (a lost
//                  wake-up). One mfence/locked op on x86.
//  load32Acquire   a volatile load, then an acquire fence: later loads (the
//                  CQE body after its phase bit, queue entries after a tail)
//                  cannot be satisfied before it.
//
// JS may do the same on its own typed arrays with Atomics.store/load (V8 emits
// sequentially consistent accesses), which costs no native call; these exist
// for code that must not depend on that and for MMIO through VFIO, where the
// access must be exactly one 32-bit bus transaction.
#include <atomic>
#include <cstdint>

#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

volatile uint32_t* Word(const Napi::CallbackInfo& info) {
  ByteSpan bytes = ArgBytes(info, 0, "buffer");
  if (bytes.data == nullptr) ThrowStorage(info.Env(), "ENOTMAPPED", "buffer is detached (unmapped)");
  auto offset = static_cast<size_t>(ArgInteger(info, 1, "byteOffset", 0, INT32_MAX));
  if (offset % 4 != 0) ThrowRange(info.Env(), "byteOffset must be a multiple of 4");
  if (offset + 4 > bytes.length) ThrowRange(info.Env(), "byteOffset is past the end of the buffer");
  return reinterpret_cast<volatile uint32_t*>(bytes.data + offset);
}

uint32_t ArgValue(const Napi::CallbackInfo& info) {
  return static_cast<uint32_t>(ArgInteger(info, 2, "value", 0, UINT32_MAX));
}

Napi::Value Store32Release(const Napi::CallbackInfo& info) {
  volatile uint32_t* word = Word(info);
  uint32_t value = ArgValue(info);
  std::atomic_thread_fence(std::memory_order_release);
  *word = value;
  return info.Env().Undefined();
}

Napi::Value Store32Fenced(const Napi::CallbackInfo& info) {
  volatile uint32_t* word = Word(info);
  uint32_t value = ArgValue(info);
  std::atomic_thread_fence(std::memory_order_release);
  *word = value;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return info.Env().Undefined();
}

Napi::Value Load32Acquire(const Napi::CallbackInfo& info) {
  uint32_t value = *Word(info);
  std::atomic_thread_fence(std::memory_order_acquire);
  return Napi::Number::New(info.Env(), value);
}

Napi::Value Fence(const Napi::CallbackInfo& info) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return info.Env().Undefined();
}

}  // namespace

void RegisterDoorbell(Napi::Env env, Napi::Object exports) {
  exports.Set("store32Release", Napi::Function::New(env, Store32Release, "store32Release"));
  exports.Set("store32Fenced", Napi::Function::New(env, Store32Fenced, "store32Fenced"));
  exports.Set("load32Acquire", Napi::Function::New(env, Load32Acquire, "load32Acquire"));
  exports.Set("fence", Napi::Function::New(env, Fence, "fence"));
}

}  // namespace offpath
