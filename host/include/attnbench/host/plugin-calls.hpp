// Which plugin operation each thread is in, on a board a supervising process can read
// after the process that made the calls crashed or hung: a run's cells execute in a
// forked worker (run/'s worker.cpp), and when the worker dies by a signal or runs past
// --cell-timeout, the run names the plugin and operation that were in progress and, for
// a crash, the library the faulting instruction was in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnbench {

enum class plugin_op : std::uint32_t {
  none,
  create,
  destroy,
  plan,
  on_prefill,
  stats,
  state_size,
  terminator_check,  // reset and check, called by the decode kernels
};
const char* plugin_op_name(plugin_op op);

// Marks the calling thread as inside plugin `library` (a plugin_library::index()) doing
// `op` until destroyed. Cheap: a few stores to the thread's slot of the board.
class plugin_call {
 public:
  plugin_call(int library, plugin_op op, std::uint32_t layer = 0, std::uint32_t step = 0) noexcept;
  ~plugin_call();
  plugin_call(const plugin_call&) = delete;
  plugin_call& operator=(const plugin_call&) = delete;

 private:
  int slot_;
  std::uint32_t saved_[4];  // the slot before this call (a plugin call inside another)
};

struct plugin_call_record {
  int library = -1;
  plugin_op op = plugin_op::none;
  std::uint32_t layer = 0, step = 0;
};

// What the crash handler saw: the signal, the faulting instruction, the thread's call.
struct crash_record {
  int signal = 0;
  std::uintptr_t pc = 0;
  plugin_call_record call;  // library -1: no plugin call on the faulting thread
};

namespace call_board {
// Moves the board to memory shared with processes forked afterwards (MAP_SHARED).
// Call in the parent before the first fork; later calls do nothing.
void share();
// Empties every slot and the crash record (the parent, before forking a worker).
void clear();
// Calls in progress on any thread.
std::vector<plugin_call_record> active();
crash_record last_crash();
// In the worker: SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT write the crash record,
// then take their default action (the process dies by the signal).
void install_crash_handlers();
}  // namespace call_board

}  // namespace attnbench
