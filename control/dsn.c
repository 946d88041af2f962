/* dsn.c - in progress (see dsn.h) */
#include "dsn.h"
