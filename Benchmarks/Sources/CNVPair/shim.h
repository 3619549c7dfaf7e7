// The one place libnvpair's header is included.
#include <libnvpair.h>
