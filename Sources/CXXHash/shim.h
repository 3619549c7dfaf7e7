// libxxhash (Debian: libxxhash-dev) for XXH3_64bits, used by the EBS block manifest.
#include <xxhash.h>
