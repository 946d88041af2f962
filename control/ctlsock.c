/* ctlsock.c - in progress (see ctlsock.h) */
#include "ctlsock.h"
