// liblzma (Debian: liblzma-dev) for xz-compressed raw images.
#include <lzma.h>
