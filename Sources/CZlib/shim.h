// zlib (Debian: zlib1g-dev) for the gzip-1…9 block compression of ZFS (a raw zlib stream per block).
#include <zlib.h>
