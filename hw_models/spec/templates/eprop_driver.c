/* eprop_driver.c — runs the golden trials through eprop_ref.c and writes every signal.
 *
 *   cc -O2 -std=c99 eprop_ref.c eprop_driver.c -lm -o eprop_ref
 *   ./eprop_ref GOLDEN_HEX_DIR OUT_DIR
 *
 * Reads the inputs of the golden run from GOLDEN_HEX_DIR (x_raw.hex, target_raw.hex, mask.hex:
 * IEEE-754 binary64 bit patterns; W_h_init.hex, W_x_init.hex, W_out_init.hex: weight codes),
 * one hexadecimal word per line, and writes one OUT_DIR/<signal>.hex per recorded signal in the
 * same format as the golden files (two's complement in the signal's word width), so a plain
 * file comparison checks the model bit for bit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eprop_ref.h"

#define MAX_FILES 64

typedef struct {
    const char *dir;
    char names[MAX_FILES][64];
    FILE *files[MAX_FILES];
    int n;
} sink_t;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "eprop_driver: %s: %s\n", what, path);
    exit(1);
}

static void emit_hex(void *ctx, const char *signal, const int64_t *codes, int n, int word)
{
    sink_t *sink = ctx;
    int k = 0;
    while (k < sink->n && strcmp(sink->names[k], signal) != 0)
        k++;
    if (k == sink->n) {
        char path[4096];
        if (sink->n == MAX_FILES)
            die("too many signals", signal);
        snprintf(path, sizeof path, "%s/%s.hex", sink->dir, signal);
        strncpy(sink->names[k], signal, sizeof sink->names[k] - 1);
        if (!(sink->files[k] = fopen(path, "w")))
            die("cannot write", path);
        sink->n++;
    }
    uint64_t mask = word >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << word) - 1);
    int digits = (word + 3) / 4;
    for (int i = 0; i < n; i++)
        fprintf(sink->files[k], "%0*llx\n", digits, (unsigned long long)((uint64_t)codes[i] & mask));
}

/* n words of a golden hex file; sign-extends words of a signed format of `word` bits */
static void read_hex(const char *dir, const char *name, uint64_t *out, long n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.hex", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read", path);
    for (long i = 0; i < n; i++) {
        unsigned long long v;
        if (fscanf(f, "%llx", &v) != 1)
            die("too few words in", path);
        out[i] = (uint64_t)v;
    }
    fclose(f);
}

static void read_f64(const char *dir, const char *name, double *out, long n)
{
    uint64_t *bits = malloc(sizeof *bits * (size_t)n);
    read_hex(dir, name, bits, n);
    for (long i = 0; i < n; i++)
        memcpy(&out[i], &bits[i], sizeof out[i]);
    free(bits);
}

static void read_codes(const char *dir, const char *name, int64_t *out, long n, int word, int is_signed)
{
    uint64_t *bits = malloc(sizeof *bits * (size_t)n);
    read_hex(dir, name, bits, n);
    for (long i = 0; i < n; i++) {
        uint64_t v = bits[i];
        if (is_signed && word < 64 && (v >> (word - 1)) & 1)
            v |= ~(uint64_t)0 << word; /* sign-extend */
        memcpy(&out[i], &v, sizeof out[i]);
    }
    free(bits);
}

static eprop_net net;

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s GOLDEN_HEX_DIR OUT_DIR\n", argv[0]);
        return 2;
    }
    const long step_in = (long)EPROP_T * EPROP_B * EPROP_NIN;
    const long step_out = (long)EPROP_T * EPROP_B * EPROP_NOUT;
    const long step_m = (long)EPROP_T * EPROP_B;
    double *x = malloc(sizeof *x * (size_t)(EPROP_TRIALS * step_in));
    double *target = malloc(sizeof *target * (size_t)(EPROP_TRIALS * step_out));
    double *mask = malloc(sizeof *mask * (size_t)(EPROP_TRIALS * step_m));
    static int64_t W_h[EPROP_N * EPROP_N], W_x[EPROP_N * EPROP_NIN], W_out[EPROP_NOUT * EPROP_N];
    read_f64(argv[1], "x_raw", x, EPROP_TRIALS * step_in);
    read_f64(argv[1], "target_raw", target, EPROP_TRIALS * step_out);
    read_f64(argv[1], "mask", mask, EPROP_TRIALS * step_m);
    read_codes(argv[1], "W_h_init", W_h, EPROP_N * EPROP_N, OP_W_h_WORD, OP_W_h_SIGNED);
    read_codes(argv[1], "W_x_init", W_x, EPROP_N * EPROP_NIN, OP_W_x_WORD, OP_W_x_SIGNED);
    read_codes(argv[1], "W_out_init", W_out, EPROP_NOUT * EPROP_N, OP_W_out_WORD, OP_W_out_SIGNED);

    sink_t sink = {argv[2], {{0}}, {0}, 0};
    eprop_init(&net, W_h, W_x, W_out);
    for (int k = 0; k < EPROP_TRIALS; k++)
        eprop_trial(&net, EPROP_T, x + k * step_in, target + k * step_out, mask + k * step_m,
                    emit_hex, &sink);
    for (int k = 0; k < sink.n; k++)
        if (fclose(sink.files[k]) != 0)
            die("cannot close", sink.names[k]);
    free(x);
    free(target);
    free(mask);
    return 0;
}
