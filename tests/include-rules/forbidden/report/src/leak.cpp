// A quoted include that leaves its room.
#include "../../plugins/tca/private.hpp"
