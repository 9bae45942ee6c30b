#include "sim/experiment.hpp"

#include "outputs/h5file.hpp"
#include "sim/core/errors.hpp"

namespace lf {

std::size_t Experiment::input_size() const {
  std::size_t n = 0;
  for (const auto& p : network.populations) {
    if (p.role == Role::input) n += static_cast<std::size_t>(p.size);
  }
  return n;
}

std::size_t Experiment::output_size() const {
  std::size_t n = 0;
  for (const auto& p : network.populations) {
    if (p.role == Role::output) n += static_cast<std::size_t>(p.size);
  }
  return n;
}

Network build_network(const NetworkSpec& spec) {
  const bool from_file = spec.init.weights == "file" || spec.init.bias == "file";
  return build_network(spec, from_file ? read_parameter_file(spec.init.file, spec.init.which)
                                       : ParameterFile{});
}

}  // namespace lf
