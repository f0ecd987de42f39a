/* eprop_driver.c — runs the golden run through eprop_ref.c, writes every signal, compares.
 *
 *   cc -O2 -std=c99 eprop_ref.c eprop_driver.c -lm -o eprop_ref
 *   ./eprop_ref GOLDEN_HEX_DIR OUT_DIR
 *
 * Inputs, read from GOLDEN_HEX_DIR (one hexadecimal word per line): x_raw.hex, target_raw.hex,
 * mask.hex, floss_x_raw.hex (IEEE-754 binary64 bit patterns), W_h_init.hex, W_x_init.hex,
 * W_out_init.hex, floss_q_init.hex (codes, two's complement in the signal's word width).
 * Outputs: OUT_DIR (created if missing) gets one <signal>.hex per recorded signal, in the same
 * format as the golden files; then every written file is compared with GOLDEN_HEX_DIR's file of
 * the same name, one line per signal ("ok" or the first differing word), and a verdict line.
 * Exit status: 0 bit-exact, 1 a mismatch, 2 a usage or input/output error.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eprop_ref.h"

#define MAX_FILES 160

typedef struct {
    const char *dir;
    char names[MAX_FILES][64];
    FILE *files[MAX_FILES];
    int n;
} sink_t;

static void die(const char *what, const char *path)
{
    fprintf(stderr, "eprop_driver: %s: %s\n", what, path);
    exit(2);
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

/* n words of a golden hex file */
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
    uint64_t *bits = malloc(sizeof *bits * (size_t)(n ? n : 1));
    read_hex(dir, name, bits, n);
    for (long i = 0; i < n; i++)
        memcpy(&out[i], &bits[i], sizeof out[i]);
    free(bits);
}

/* codes of a signed format of `word` bits are sign-extended */
static void read_codes(const char *dir, const char *name, int64_t *out, long n, int word, int is_signed)
{
    uint64_t *bits = malloc(sizeof *bits * (size_t)n);
    read_hex(dir, name, bits, n);
    for (long i = 0; i < n; i++) {
        uint64_t v = bits[i];
        if (is_signed && word < 64 && (v >> (word - 1)) & 1)
            v |= ~(uint64_t)0 << word;
        memcpy(&out[i], &v, sizeof out[i]);
    }
    free(bits);
}

/* 0 when OUT_DIR/name.hex equals GOLDEN_DIR/name.hex line for line; prints one verdict line */
static int compare(const char *golden, const char *out, const char *name)
{
    char pg[4096], po[4096], lg[64], lo[64];
    snprintf(pg, sizeof pg, "%s/%s.hex", golden, name);
    snprintf(po, sizeof po, "%s/%s.hex", out, name);
    FILE *g = fopen(pg, "r"), *o = fopen(po, "r");
    int bad = 0;
    long line = 0;
    if (!g) {
        printf("%-24s MISMATCH: no golden file %s\n", name, pg);
        bad = 1;
    } else if (!o) {
        die("cannot read", po);
    } else {
        for (;; line++) {
            char *a = fgets(lg, sizeof lg, g), *b = fgets(lo, sizeof lo, o);
            if (!a && !b)
                break;
            if (!a || !b || strcmp(lg, lo) != 0) {
                lg[strcspn(lg, "\n")] = lo[strcspn(lo, "\n")] = 0;
                printf("%-24s MISMATCH at word %ld: model %s, golden %s\n", name, line, b ? lo : "(end)",
                       a ? lg : "(end)");
                bad = 1;
                break;
            }
        }
        if (!bad)
            printf("%-24s ok (%ld words)\n", name, line);
    }
    if (g)
        fclose(g);
    if (o)
        fclose(o);
    return bad;
}

static eprop_net net;

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s GOLDEN_HEX_DIR OUT_DIR\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[2], 0777) != 0 && errno != EEXIST)
        die("cannot create", argv[2]);
    const long step_in = (long)EPROP_T * EPROP_B * EPROP_NIN;
    const long step_out = (long)EPROP_T * EPROP_B * EPROP_NOUT;
    const long step_m = (long)EPROP_T * EPROP_B;
    double *x = malloc(sizeof *x * (size_t)(EPROP_TRIALS * step_in));
    double *target = malloc(sizeof *target * (size_t)(EPROP_TRIALS * step_out));
    double *mask = malloc(sizeof *mask * (size_t)(EPROP_TRIALS * step_m));
    double *fx = malloc(sizeof *fx * (size_t)((FLOSS_ITERS ? FLOSS_ITERS : 1) * step_in));
    static int64_t W_h[EPROP_N * EPROP_N], W_x[EPROP_N * EPROP_NIN], W_out[EPROP_NOUT * EPROP_N];
    static int64_t q0[EPROP_N];
    read_f64(argv[1], "x_raw", x, EPROP_TRIALS * step_in);
    read_f64(argv[1], "target_raw", target, EPROP_TRIALS * step_out);
    read_f64(argv[1], "mask", mask, EPROP_TRIALS * step_m);
    read_codes(argv[1], "W_h_init", W_h, EPROP_N * EPROP_N, OP_W_h_WORD, OP_W_h_SIGNED);
    read_codes(argv[1], "W_x_init", W_x, EPROP_N * EPROP_NIN, OP_W_x_WORD, OP_W_x_SIGNED);
    read_codes(argv[1], "W_out_init", W_out, EPROP_NOUT * EPROP_N, OP_W_out_WORD, OP_W_out_SIGNED);
    if (FLOSS_ITERS) {
        read_f64(argv[1], "floss_x_raw", fx, FLOSS_ITERS * step_in);
        read_codes(argv[1], "floss_q_init", q0, EPROP_N, OP_q_WORD, OP_q_SIGNED);
    }

    sink_t sink = {argv[2], {{0}}, {0}, 0};
    eprop_init(&net, W_h, W_x, W_out);
    for (int k = 0; k < FLOSS_ITERS; k++)
        eprop_floss(&net, EPROP_T, fx + k * step_in, q0, emit_hex, &sink);
    for (int k = 0; k < EPROP_TRIALS; k++)
        eprop_trial(&net, EPROP_T, x + k * step_in, target + k * step_out, mask + k * step_m,
                    emit_hex, &sink);
    for (int k = 0; k < sink.n; k++)
        if (fclose(sink.files[k]) != 0)
            die("cannot close", sink.names[k]);
    int bad = 0;
    for (int k = 0; k < sink.n; k++)
        bad += compare(argv[1], argv[2], sink.names[k]);
    if (bad)
        printf("verdict: MISMATCH in %d of %d signals\n", bad, sink.n);
    else
        printf("verdict: bit-exact, %d signals\n", sink.n);
    free(x);
    free(target);
    free(mask);
    free(fx);
    return bad ? 1 : 0;
}
