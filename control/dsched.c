/* dsched.c - in progress */
#include "dsched.h"
