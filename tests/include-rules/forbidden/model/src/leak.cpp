// model/ may not include run/ (run drives the model, not the other way).
#include <attnbench/model/model.hpp>
#include <attnbench/run/engine.hpp>
