// libzstd (Debian: libzstd-dev) for zstd-compressed raw images and zstd-compressed qcow2 clusters.
#include <zstd.h>
