// A small dense linear solver for the readout's least-squares fits.
#pragma once

#include <vector>

namespace attnbench {

// Solves G a = b for a square G ([n * n], row-major) by Gaussian elimination with
// partial pivoting; G and b are consumed. Returns a.
std::vector<double> solve_linear_system(std::vector<double> g, std::vector<double> b);

}  // namespace attnbench
