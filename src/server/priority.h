// CPU priority of the compute threads relative to the front ends.
#pragma once

namespace encserve::server {

// Sets nice value `nice` (0..19: lower priority) on every thread of the process except the
// calling one, and returns how many threads were changed. The server calls it once the model
// is loaded and the batcher started, before the front ends start: at that point the other
// threads are the compute threads (backend thread pools, batcher workers), so the threads that
// accept, parse, refuse and answer requests keep the normal priority and are scheduled ahead
// of computation when both want a core (prompt refusals and health checks under overload).
int LowerOtherThreadsPriority(int nice);

}  // namespace encserve::server
