// The emulated BAR0 of every controller (PF and VFs): one 16 KiB shared
// memory page set that the host maps read-write.
//
//   0x0000  NVMe controller registers (CAP, VS, CC, CSTS, AQA, ASQ, ACQ, ...)
//   0x1000  doorbells, DSTRD = 0: SQ y tail at 0x1000 + 8y, CQ y head at +4
//   0x3000  the emulator page (offpath-specific, documented in docs/emulator.md):
//             +0  poller_sleeping  u32, written by the emulator: 1 while the
//                 poller serving this controller sleeps. After ringing a
//                 doorbell (or writing CC) the host issues a full fence, reads
//                 this word and, if 1, signals the wake eventfd. The poller
//                 sets it, fences, and re-checks every doorbell before it
//                 sleeps, so one of the two always sees the other.
//             +4  wakeups      u32, how often the poller was woken (diagnostics)
//
// The same layout is declared for TypeScript in libstorage/transport/emu/bar.ts.
#pragma once

#include <cstdint>

namespace offpath::emu {

constexpr uint32_t kBarBytes = 16384;
constexpr uint32_t kDoorbellBase = 0x1000;
constexpr uint32_t kEmulatorPageOffset = 0x3000;
constexpr uint32_t kPollerSleepingOffset = kEmulatorPageOffset + 0;
constexpr uint32_t kWakeupsOffset = kEmulatorPageOffset + 4;
// Queue ids 0..kMaxQueueId: 0 is the admin queue. Doorbells of the last pair
// end well before the emulator page.
constexpr uint16_t kMaxQueueId = 64;
static_assert(kDoorbellBase + 8 * (kMaxQueueId + 1) <= kEmulatorPageOffset, "doorbells overlap the emulator page");

}  // namespace offpath::emu
