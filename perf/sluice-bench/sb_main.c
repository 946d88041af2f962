/*
 * sb_main.c - sluice-bench: SMTP load generator ("gen") and sink ("sink")
 * over kernel sockets; gen also over memif with sluice's TCP stack
 * (--transport memif). See docs/performance.md, section sluice-bench.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sb_gen.h"

int sb_sink_main(int argc, char **argv);

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs("usage: sluice-bench gen [OPTIONS]   load generator (gen --help;\n"
		      "                                   --transport kernel|memif)\n"
		      "       sluice-bench sink [OPTIONS]  receiving server (sink --help)\n",
		      argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[1], "gen"))
		return sb_gen_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sink"))
		return sb_sink_main(argc - 1, argv + 1);
	fprintf(stderr, "sluice-bench: unknown command '%s' (gen, sink)\n", argv[1]);
	return 2;
}
