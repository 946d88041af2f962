/* ctlcmd.c - in progress (see ctlcmd.h) */
#include "ctlcmd.h"
