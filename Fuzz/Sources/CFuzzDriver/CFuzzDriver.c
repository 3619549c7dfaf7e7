// Intentionally empty: the header declares a symbol of the fuzzer runtime.
#include "CFuzzDriver.h"
