/*
 * fuzz_driver.c - replay driver for libFuzzer targets when libFuzzer is
 * not available (gcc builds, or -Dfuzz=false): runs the target on every
 * file of the given corpus directories/files, then on N pseudo-random
 * inputs from a fixed seed, so the fuzz suite always exercises the target.
 *
 * Usage: fuzz_driver [-n N] [-s SEED] [-m MAXLEN] CORPUS_DIR_OR_FILE...
 * Exit status 0 when every input ran (the target abort()s on a violation).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the input being run, saved by the abort handler for reproduction */
static const uint8_t *cur_data;
static size_t cur_size;

/* on_abort - write the failing input to ./fuzz-crash.bin, then die */
static void on_abort(int sig)
{
	static const char msg[] = "fuzz_driver: failing input saved to "
				  "fuzz-crash.bin\n";
	int fd = open("fuzz-crash.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		if (write(fd, cur_data, cur_size) < 0 ||
		    write(2, msg, sizeof(msg) - 1) < 0)
			_exit(134);
		close(fd);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run_one(const uint8_t *data, size_t size)
{
	cur_data = data;
	cur_size = size;
	LLVMFuzzerTestOneInput(data, size);
}

/* run_file - feed one file to the target */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f) {
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	run_one(buf, (size_t)n);
	free(buf);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* run_dir - every regular file of a directory, in name order */
static int run_dir(const char *dir, unsigned *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (!d) {
		perror(dir);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
		if (!names[n])
			abort();
		sprintf(names[n++], "%s/%s", dir, e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(names[i]) < 0)
				rc = -1;
			(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long n_random = 1000, maxlen = 2048, files = 0;
	uint64_t seed = 0x5eed5eedcafef00dull;
	unsigned count = 0;
	uint8_t *buf;

	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			n_random = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			maxlen = strtoul(argv[++i], NULL, 0);
		} else if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) < 0)
				return 1;
		} else {
			if (run_file(argv[i]) < 0)
				return 1;
			count++;
		}
	}
	files = count;
	buf = malloc(maxlen + 1);
	if (!buf)
		return 1;
	for (unsigned long k = 0; k < n_random; k++) {
		size_t len;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		len = (size_t)(seed % (maxlen + 1));
		for (size_t i = 0; i < len; i++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			buf[i] = (uint8_t)(seed >> 24);
		}
		run_one(buf, len);
	}
	free(buf);
	printf("fuzz_driver: %lu corpus inputs and %lu random inputs ran "
	       "without a violation\n", files, n_random);
	return 0;
}
