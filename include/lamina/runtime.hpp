// Process-wide runtime settings: the number of threads the compute kernels (oneDNN, OpenMP)
// may use. The default is the machine's core count.
//
//   lamina::set_num_threads(1);
#pragma once

namespace lamina {

void set_num_threads(int n);  // ValueError for n < 1
int get_num_threads();

}  // namespace lamina
