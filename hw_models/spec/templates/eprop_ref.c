/* eprop_ref.c — bit-exact C reference model of neurosim's integer e-prop engine.
 *
 * Generic code: every constant of one profile and one network (formats, shifts, rounding
 * modes, leak codes, sizes, seeds) is a #define of the generated eprop_ref.h. The operations
 * and their order are those of spec.json ("step" S0..S15, "update" U1..U9, "floss_step" F1..F9,
 * "floss_end" F10..F13); each function below names the operation it implements. C99, integer
 * arithmetic on int64_t (flossing: a digit-by-digit square root, division with a remainder,
 * leading-one detection); the three
 * operations that spec.json marks "binary64" (S0, S4, S6) use IEEE-754 double exactly as the
 * spec states (each a single correctly rounded operation).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eprop_ref.h"

/* ---- the counter-based generator (spec.json "rng") ------------------------------------ */

uint32_t eprop_hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= UINT32_C(0x7feb352d);
    x ^= x >> 15;
    x *= UINT32_C(0x846ca68b);
    x ^= x >> 16;
    return x;
}

uint32_t eprop_network_key(uint32_t stream, uint64_t seed)
{
    uint32_t k = eprop_hash32(stream ^ UINT32_C(0x9e3779b9));
    k = eprop_hash32(k ^ (uint32_t)(seed & 0xffffffffu));
    return eprop_hash32(k ^ (uint32_t)(seed >> 32));
}

/* draws d_i = H(H(key ^ H(c)) ^ i) of one stochastic operation; advances the counter c */
static void next_draws(eprop_net *net, uint32_t *d, int n)
{
    uint32_t op_key = eprop_hash32(net->key ^ eprop_hash32(net->counter));
    for (int i = 0; i < n; i++)
        d[i] = eprop_hash32(op_key ^ (uint32_t)i);
    net->counter += 1u; /* mod 2^32 */
}

/* ---- rounding and overflow (spec.json "rounding_modes", "overflow_modes") -------------- */

static int64_t floor_shr(int64_t c, int k) /* floor(c / 2^k), 1 <= k <= 62 */
{
    int64_t p = (int64_t)1 << k;
    return c >= 0 ? c / p : -((-c + p - 1) / p);
}

/* c · 2^-k rounded to an integer; draw is used by the stochastic mode only */
static int64_t round_int(int64_t c, int k, int mode, uint32_t draw)
{
    if (k <= 0)
        return c * ((int64_t)1 << -k); /* exact left shift */
    int64_t fl = floor_shr(c, k);
    int64_t rem = c - fl * ((int64_t)1 << k); /* 0 <= rem < 2^k */
    int64_t half = (int64_t)1 << (k - 1);
    switch (mode) {
    case EPROP_FLOOR:
        return fl;
    case EPROP_TRUNC:
        return (c < 0 && rem != 0) ? fl + 1 : fl;
    case EPROP_NEAREST_EVEN:
        return rem > half ? fl + 1 : rem < half ? fl : fl + (fl & 1);
    case EPROP_NEAREST_AWAY:
        return rem > half ? fl + 1 : rem < half ? fl : (c >= 0 ? fl + 1 : fl);
    default: /* stochastic: up iff d · 2^k < rem · 2^32 */
        if (k <= 32)
            return fl + ((uint64_t)draw < ((uint64_t)rem << (32 - k)));
        {
            int m = k - 32;
            int64_t up = (rem >> m) + ((rem & (((int64_t)1 << m) - 1)) != 0); /* ceil(rem / 2^m) */
            return fl + ((int64_t)draw < up);
        }
    }
}

/* a binary64 value rounded to an integer (still a double) */
static double round_f64(double v, int mode, uint32_t draw)
{
    switch (mode) {
    case EPROP_FLOOR:
        return floor(v);
    case EPROP_TRUNC:
        return trunc(v);
    case EPROP_NEAREST_EVEN:
        return rint(v); /* default rounding mode: ties to even */
    case EPROP_NEAREST_AWAY:
        return round(v);
    default: {
        double fl = floor(v);
        return fl + (ldexp((double)draw, -32) < v - fl ? 1.0 : 0.0);
    }
    }
}

static int64_t overflow(int64_t c, int64_t lo, int64_t hi, int word, int64_t *count)
{
    if (c >= lo && c <= hi)
        return c;
    *count += 1;
    if (EPROP_OVERFLOW == EPROP_SATURATE)
        return c < lo ? lo : hi;
    {
        int64_t p = (int64_t)1 << word, m = (c - lo) % p;
        return (m < 0 ? m + p : m) + lo;
    }
}

static double overflow_f64(double c, int64_t lo, int64_t hi, int word, int64_t *count)
{
    if (c >= (double)lo && c <= (double)hi)
        return c;
    *count += 1;
    if (EPROP_OVERFLOW == EPROP_SATURATE)
        return c < (double)lo ? (double)lo : (double)hi;
    {
        double p = ldexp(1.0, word), m = fmod(c - (double)lo, p);
        return (m < 0 ? m + p : m) + (double)lo;
    }
}

/* ---- one requantize operation: draws, rounding, overflow, emission ----------------------- */

typedef struct {
    const char *name;
    int shift, mode, word, counter;
    int64_t lo, hi;
} op_t;

#define OP(sig) {#sig, OP_##sig##_SHIFT, OP_##sig##_ROUND, OP_##sig##_WORD, CNT_##sig, \
                 OP_##sig##_MIN, OP_##sig##_MAX}

static uint32_t draws[EPROP_MAXEL];
static const char *phase = ""; /* "floss_" while a flossing iteration runs: the golden file prefix */

static void emit_draws(const op_t *op, int n, eprop_emit_fn emit, void *ctx)
{
    static int64_t words[EPROP_MAXEL];
    char name[80];
    snprintf(name, sizeof name, "%sdraw_%s", phase, op->name);
    for (int i = 0; i < n; i++)
        words[i] = draws[i];
    emit(ctx, name, words, n, 32);
}

static void requant(eprop_net *net, const op_t *op, int64_t *out, const int64_t *sum, int n,
                    eprop_emit_fn emit, void *ctx)
{
    if (op->mode == EPROP_STOCHASTIC) {
        next_draws(net, draws, n);
        emit_draws(op, n, emit, ctx);
    }
    for (int i = 0; i < n; i++)
        out[i] = overflow(round_int(sum[i], op->shift, op->mode, draws[i]), op->lo, op->hi,
                          op->word, &net->counters[op->counter]);
}

/* v is the binary64 value already multiplied by its operand scale; ldexp is exact */
static void requant_f64(eprop_net *net, const op_t *op, int64_t *out, const double *v, int n,
                        eprop_emit_fn emit, void *ctx)
{
    if (op->mode == EPROP_STOCHASTIC) {
        next_draws(net, draws, n);
        emit_draws(op, n, emit, ctx);
    }
    for (int i = 0; i < n; i++) {
        double c = round_f64(ldexp(v[i], -op->shift), op->mode, draws[i]);
        out[i] = (int64_t)overflow_f64(c, op->lo, op->hi, op->word, &net->counters[op->counter]);
    }
}

/* ---- the network ---------------------------------------------------------------------------- */

void eprop_init(eprop_net *net, const int64_t *W_h, const int64_t *W_x, const int64_t *W_out)
{
    memset(net, 0, sizeof *net);
    memcpy(net->W_h, W_h, sizeof net->W_h);
    memcpy(net->W_x, W_x, sizeof net->W_x);
    memcpy(net->W_out, W_out, sizeof net->W_out);
    net->key = eprop_network_key(EPROP_STREAM_SEED, EPROP_NETWORK_SEED);
    net->counter = 0;
}

#define N EPROP_N
#define NIN EPROP_NIN
#define NOUT EPROP_NOUT
#define B EPROP_B
#define SH(v, k) ((v) * ((int64_t)1 << (k))) /* exact left shift of a signed value */

/* U1..U9: dW = Q_W(acc >> (f_acc + lr_shift - f_W)); W = overflow(W - dW); then acc = 0, or with
 * EPROP_CARRY acc = acc - (dW << (f_acc + lr_shift - f_W)), the part the update did not apply */
static void update_one(eprop_net *net, const op_t *dop, const op_t *wop, int64_t *W, int64_t *acc,
                       int n, const char *acc_name, eprop_emit_fn emit, void *ctx)
{
    static int64_t dW[EPROP_MAXEL];
    requant(net, dop, dW, acc, n, emit, ctx);
    emit(ctx, acc_name, acc, n, OP_acc_W_h_WORD);
    emit(ctx, dop->name, dW, n, dop->word);
    for (int i = 0; i < n; i++) {
        W[i] = overflow(W[i] - dW[i], wop->lo, wop->hi, wop->word, &net->counters[wop->counter]);
        acc[i] = EPROP_CARRY ? acc[i] - SH(dW[i], dop->shift) : 0;
    }
    emit(ctx, wop->name, W, n, wop->word);
}

static void update(eprop_net *net, eprop_emit_fn emit, void *ctx)
{
    static const op_t d_h = OP(dW_h), d_x = OP(dW_x), d_out = OP(dW_out);
    static const op_t w_h = {"W_h", 0, 0, OP_W_h_WORD, CNT_W_h, OP_W_h_MIN, OP_W_h_MAX};
    static const op_t w_x = {"W_x", 0, 0, OP_W_x_WORD, CNT_W_x, OP_W_x_MIN, OP_W_x_MAX};
    static const op_t w_out = {"W_out", 0, 0, OP_W_out_WORD, CNT_W_out, OP_W_out_MIN, OP_W_out_MAX};
    update_one(net, &d_h, &w_h, net->W_h, net->acc_W_h, N * N, "acc_W_h", emit, ctx);
    update_one(net, &d_x, &w_x, net->W_x, net->acc_W_x, N * NIN, "acc_W_x", emit, ctx);
    update_one(net, &d_out, &w_out, net->W_out, net->acc_W_out, NOUT * N, "acc_W_out", emit, ctx);
}

/* S10..S15: G = Q_acc(Σ_b post ⊗ pre); acc = overflow_acc(acc + G); both recorded per step */
static void accumulate(eprop_net *net, const op_t *op, int64_t *acc, const char *acc_name,
                       const int64_t *post, int np, const int64_t *pre, int nq, eprop_emit_fn emit,
                       void *ctx)
{
    static int64_t S[EPROP_MAXEL], G[EPROP_MAXEL];
    for (int i = 0; i < np; i++)
        for (int j = 0; j < nq; j++) {
            int64_t s = 0;
            for (int b = 0; b < B; b++)
                s += post[b * np + i] * pre[b * nq + j];
            S[i * nq + j] = s;
        }
    requant(net, op, G, S, np * nq, emit, ctx);
    for (int i = 0; i < np * nq; i++)
        acc[i] = overflow(acc[i] + G[i], OP_acc_W_h_MIN, OP_acc_W_h_MAX, OP_acc_W_h_WORD,
                          &net->counters[CNT_acc]);
    emit(ctx, op->name, G, np * nq, op->word);
    emit(ctx, acc_name, acc, np * nq, OP_acc_W_h_WORD);
}

/* S0..S3: x_t, I = W_h r_t + W_x x_t, h_{t+1}, r_{t+1} from h (in place) and r_prev = r_t */
static void forward(eprop_net *net, const double *x_raw_t, const int64_t *r_prev, int64_t *x,
                    int64_t *I, int64_t *h, int64_t *r, eprop_emit_fn emit, void *ctx)
{
    static const op_t o_x = OP(x), o_I = OP(I), o_h = OP(h), o_r = OP(r);
    int64_t s[B * N];
    double v[B * NIN];
    /* S0 x_t = Q_x(x_raw_t · 2^f_x) */
    for (int i = 0; i < B * NIN; i++)
        v[i] = x_raw_t[i];
    requant_f64(net, &o_x, x, v, B * NIN, emit, ctx);
    /* S1 I = Q_h(W_h r_t + W_x x_t) */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            int64_t a = 0, c = 0;
            for (int j = 0; j < N; j++)
                a += net->W_h[i * N + j] * r_prev[b * N + j];
            for (int j = 0; j < NIN; j++)
                c += net->W_x[i * NIN + j] * x[b * NIN + j];
            s[b * N + i] = SH(a, OP_I_LSH0) + SH(c, OP_I_LSH1);
        }
    requant(net, &o_I, I, s, B * N, emit, ctx);
    /* S2 h_{t+1} = Q_h(α_c h_t + β_c I) */
    for (int i = 0; i < B * N; i++)
        s[i] = SH(EPROP_ALPHA_C * h[i], OP_h_LSH0) + SH(EPROP_BETA_C * I[i], OP_h_LSH1);
    requant(net, &o_h, h, s, B * N, emit, ctx);
    /* S3 r_{t+1} = Q_r(max(h_{t+1}, 0)) */
    for (int i = 0; i < B * N; i++)
        s[i] = h[i] > 0 ? h[i] : 0;
    requant(net, &o_r, r, s, B * N, emit, ctx);
}

void eprop_trial(eprop_net *net, int T, const double *x_raw, const double *target_raw,
                 const double *mask, eprop_emit_fn emit, void *ctx)
{
    static const op_t o_tg = OP(target), o_y = OP(y), o_e = OP(e), o_L = OP(L), o_eps = OP(eps), o_epsx = OP(eps_x),
                      o_gh = OP(G_W_h), o_gx = OP(G_W_x), o_gout = OP(G_W_out);
    int64_t h[B * N] = {0}, r[B * N] = {0}, eps[B * N] = {0}, epsx[B * NIN] = {0};
    int64_t r_prev[B * N], x[B * NIN], I[B * N], ys[B * NOUT], y[B * NOUT], e[B * NOUT], L[B * N];
    int64_t s[B * N];
    double v[B * (NIN > NOUT ? NIN : NOUT)];
    double msum = 0.0;
    for (int i = 0; i < T * B; i++)
        msum += mask[i];
    if (msum < 1.0)
        msum = 1.0;
    for (int t = 0; t < T; t++) {
        memcpy(r_prev, r, sizeof r);
        forward(net, x_raw + t * B * NIN, r_prev, x, I, h, r, emit, ctx);
        /* S4 y*_t = Q_y(target_raw_t · 2^f_y) */
        for (int i = 0; i < B * NOUT; i++)
            v[i] = target_raw[t * B * NOUT + i];
        requant_f64(net, &o_tg, ys, v, B * NOUT, emit, ctx);
        /* S5 y_t = Q_y(W_out r_{t+1}) */
        for (int b = 0; b < B; b++)
            for (int o = 0; o < NOUT; o++) {
                int64_t a = 0;
                for (int j = 0; j < N; j++)
                    a += net->W_out[o * N + j] * r[b * N + j];
                s[b * NOUT + o] = a;
            }
        requant(net, &o_y, y, s, B * NOUT, emit, ctx);
        /* S6 e_t = Q_e((y_t - y*_t) · w_t), w_t = m_t / max(Σm, 1), in binary64 */
        for (int b = 0; b < B; b++)
            for (int o = 0; o < NOUT; o++)
                v[b * NOUT + o] = (double)(y[b * NOUT + o] - ys[b * NOUT + o]) * (mask[t * B + b] / msum);
        requant_f64(net, &o_e, e, v, B * NOUT, emit, ctx);
        /* S7 L_{t+1} = Q_L([h_{t+1} > 0] · (W_out^T e_t)) */
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++) {
                int64_t a = 0;
                for (int o = 0; o < NOUT; o++)
                    a += net->W_out[o * N + i] * e[b * NOUT + o];
                s[b * N + i] = h[b * N + i] > 0 ? a : 0;
            }
        requant(net, &o_L, L, s, B * N, emit, ctx);
        /* S8 ε_{t+1} = Q_eps(α_c ε_t + β_c r_t) */
        for (int i = 0; i < B * N; i++)
            s[i] = SH(EPROP_ALPHA_C * eps[i], OP_eps_LSH0) + SH(EPROP_BETA_C * r_prev[i], OP_eps_LSH1);
        requant(net, &o_eps, eps, s, B * N, emit, ctx);
        /* S9 ε^x_{t+1} = Q_eps(α_c ε^x_t + β_c x_t) */
        for (int i = 0; i < B * NIN; i++)
            s[i] = SH(EPROP_ALPHA_C * epsx[i], OP_eps_x_LSH0) + SH(EPROP_BETA_C * x[i], OP_eps_x_LSH1);
        requant(net, &o_epsx, epsx, s, B * NIN, emit, ctx);
        /* S10..S15 gradient accumulation */
        accumulate(net, &o_gh, net->acc_W_h, "acc_W_h_step", L, N, eps, N, emit, ctx);
        accumulate(net, &o_gx, net->acc_W_x, "acc_W_x_step", L, N, epsx, NIN, emit, ctx);
        accumulate(net, &o_gout, net->acc_W_out, "acc_W_out_step", e, NOUT, r, N, emit, ctx);
        if (EPROP_PER_STEP || t == T - 1)
            update(net, emit, ctx);
        emit(ctx, "x", x, B * NIN, OP_x_WORD);
        emit(ctx, "target", ys, B * NOUT, OP_target_WORD);
        emit(ctx, "I", I, B * N, OP_I_WORD);
        emit(ctx, "h", h, B * N, OP_h_WORD);
        emit(ctx, "r", r, B * N, OP_r_WORD);
        emit(ctx, "y", y, B * NOUT, OP_y_WORD);
        emit(ctx, "e", e, B * NOUT, OP_e_WORD);
        emit(ctx, "L", L, B * N, OP_L_WORD);
        emit(ctx, "eps", eps, B * N, OP_eps_WORD);
        emit(ctx, "eps_x", epsx, B * NIN, OP_eps_x_WORD);
    }
    emit(ctx, "overflow_counts", net->counters, EPROP_NCOUNTERS, 64);
}

/* ---- local gradient flossing (spec.json "operations.floss_step", "floss_end") ------------- */

/* digit-by-digit (restoring) integer square root: floor(sqrt(s)) */
static uint64_t isqrt_u64(uint64_t s)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > s)
        bit >>= 2;
    while (bit) {
        if (s >= r + bit) {
            s -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

/* n / d (d > 0) rounded from the floor quotient and the remainder 0 <= rem < d, the pair a
 * restoring divider produces; stochastic: up iff draw · d < rem · 2^32 */
static int64_t div_round(int64_t n, int64_t d, int mode, uint32_t draw)
{
    int64_t fl = n >= 0 ? n / d : -((-n + d - 1) / d);
    int64_t rem = n - fl * d;
    switch (mode) {
    case EPROP_FLOOR:
        return fl;
    case EPROP_TRUNC:
        return (n < 0 && rem != 0) ? fl + 1 : fl;
    case EPROP_NEAREST_EVEN:
        return 2 * rem > d ? fl + 1 : 2 * rem < d ? fl : fl + (fl & 1);
    case EPROP_NEAREST_AWAY:
        return 2 * rem > d ? fl + 1 : 2 * rem < d ? fl : (n >= 0 ? fl + 1 : fl);
    default:
        return fl + ((uint64_t)draw * (uint64_t)d < ((uint64_t)rem << 32));
    }
}

/* F4, F5, F10, F11: out[i] = Q((num[i] · coef << lsh) / den[i / per]) */
static void requant_div(eprop_net *net, const op_t *op, int64_t *out, const int64_t *num, int64_t coef,
                        int lsh, const int64_t *den, int per, int n, eprop_emit_fn emit, void *ctx)
{
    if (op->mode == EPROP_STOCHASTIC) {
        next_draws(net, draws, n);
        emit_draws(op, n, emit, ctx);
    }
    for (int i = 0; i < n; i++)
        out[i] = overflow(div_round(SH(num[i] * coef, lsh), den[i / per], op->mode, draws[i]), op->lo,
                          op->hi, op->word, &net->counters[op->counter]);
}

void eprop_floss(eprop_net *net, int T, const double *x_raw, const int64_t *q0, eprop_emit_fn emit,
                 void *ctx)
{
    static const op_t o_v = OP(v), o_q = OP(q), o_pre = OP(pre), o_ell = OP(ell), o_gq = OP(G_q),
                      o_lam = OP(lam), o_g = OP(g_floss), o_dw = OP(dW_floss);
    static int64_t acc[N * N], G[N * N], S[N * N], dW[N * N];
    int64_t h[B * N] = {0}, r[B * N] = {0}, r_prev[B * N], q[B * N], p[B * N], v[B * N], qn[B * N];
    int64_t pre[B * N], x[B * NIN], I[B * N], s[B * N], gam[B], ell[B], mS[B], Lam = 0;
    int64_t lam, g, n_div[1];
    phase = "floss_";
    memset(acc, 0, sizeof acc);
    for (int b = 0; b < B; b++)
        memcpy(q + b * N, q0, sizeof *q * N);
    for (int t = 0; t < T; t++) {
        /* F1 p = [h_t > 0] · q_t */
        for (int i = 0; i < B * N; i++)
            p[i] = h[i] > 0 ? q[i] : 0;
        /* F2 v = Q_q(α_c q_t + β_c W_h p) */
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++) {
                int64_t a = 0;
                for (int j = 0; j < N; j++)
                    a += net->W_h[i * N + j] * p[b * N + j];
                s[b * N + i] = SH(EPROP_ALPHA_C * q[b * N + i], OP_v_LSH0) + SH(OP_v_COEF1 * a, OP_v_LSH1);
            }
        requant(net, &o_v, v, s, B * N, emit, ctx);
        /* F3 γ = max(1, overflow((isqrt(S') + 1) >> 1)), S' = Σ v² · 2^SQ_SHIFT */
        for (int b = 0; b < B; b++) {
            uint64_t sq = 0;
            for (int i = 0; i < N; i++)
                sq += (uint64_t)(v[b * N + i] * v[b * N + i]);
            if (OP_gamma_SQ_SHIFT >= 0) /* S' = Σ v² · 2^SQ_SHIFT, a floor right shift if negative */
                sq *= (uint64_t)1 << (OP_gamma_SQ_SHIFT > 0 ? OP_gamma_SQ_SHIFT : 0);
            else
                sq >>= OP_gamma_SQ_SHIFT < 0 ? -OP_gamma_SQ_SHIFT : 0;
            gam[b] = overflow((int64_t)((isqrt_u64(sq) + 1) >> 1), OP_gamma_MIN, OP_gamma_MAX,
                              OP_gamma_WORD, &net->counters[CNT_gamma]);
            if (gam[b] < OP_gamma_FLOOR_CODE)
                gam[b] = OP_gamma_FLOOR_CODE;
        }
        /* F4 q_{t+1} = Q_q((v << f_g) / γ);  F5 pre = Q_q((p << f_g) / γ) */
        requant_div(net, &o_q, qn, v, OP_q_NUM_COEF, OP_q_NUM_LSH, gam, N, B * N, emit, ctx);
        requant_div(net, &o_pre, pre, p, OP_pre_NUM_COEF, OP_pre_NUM_LSH, gam, N, B * N, emit, ctx);
        /* F6 ℓ = Q_g(((k - f_g) << k) + (γ - 2^k)) >> (k - f_g)), k the leading-one position */
        if (o_ell.mode == EPROP_STOCHASTIC) {
            next_draws(net, draws, B);
            emit_draws(&o_ell, B, emit, ctx);
        }
        for (int b = 0; b < B; b++) {
            int k = 0;
            while (gam[b] >> (k + 1))
                k++;
            mS[b] = (int64_t)(k - OP_ell_FRAC) * ((int64_t)1 << k) + (gam[b] - ((int64_t)1 << k));
            ell[b] = overflow(round_int(mS[b], k - OP_ell_FRAC, o_ell.mode, draws[b]), o_ell.lo, o_ell.hi,
                              o_ell.word, &net->counters[CNT_ell]);
        }
        if (t >= FLOSS_WARMUP) {
            /* F7 G_q = Q_acc(β_c Σ_b q_{t+1} ⊗ pre);  F8 acc_q = overflow(acc_q + G_q);  F9 Λ += Σ ℓ */
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    int64_t a = 0;
                    for (int b = 0; b < B; b++)
                        a += qn[b * N + i] * pre[b * N + j];
                    S[i * N + j] = SH(OP_G_q_COEF0 * a, OP_G_q_LSH0);
                }
            requant(net, &o_gq, G, S, N * N, emit, ctx);
            for (int i = 0; i < N * N; i++)
                acc[i] = overflow(acc[i] + G[i], OP_acc_q_MIN, OP_acc_q_MAX, OP_acc_q_WORD,
                                  &net->counters[CNT_acc_q]);
            for (int b = 0; b < B; b++)
                Lam += ell[b];
        }
        emit(ctx, "floss_p", p, B * N, OP_q_WORD);
        emit(ctx, "floss_v", v, B * N, OP_v_WORD);
        emit(ctx, "floss_gamma", gam, B, OP_gamma_WORD);
        emit(ctx, "floss_q", qn, B * N, OP_q_WORD);
        emit(ctx, "floss_pre", pre, B * N, OP_pre_WORD);
        emit(ctx, "floss_ell", ell, B, OP_ell_WORD);
        if (t >= FLOSS_WARMUP) {
            emit(ctx, "floss_G_q", G, N * N, OP_G_q_WORD);
            emit(ctx, "floss_acc_q", acc, N * N, OP_acc_q_WORD);
        }
        memcpy(q, qn, sizeof q);
        memcpy(r_prev, r, sizeof r);
        forward(net, x_raw + t * B * NIN, r_prev, x, I, h, r, emit, ctx);
        emit(ctx, "floss_x", x, B * NIN, OP_x_WORD);
        emit(ctx, "floss_I", I, B * N, OP_I_WORD);
        emit(ctx, "floss_h", h, B * N, OP_h_WORD);
        emit(ctx, "floss_r", r, B * N, OP_r_WORD);
    }
    /* F10 λ = Q_g((Λ · LN2) / (n << 16));  F11 g = Q_g((2 λ) / n) */
    n_div[0] = OP_lam_DIV;
    requant_div(net, &o_lam, &lam, &Lam, OP_lam_NUM_COEF, OP_lam_NUM_LSH, n_div, 1, 1, emit, ctx);
    n_div[0] = OP_g_floss_DIV;
    requant_div(net, &o_g, &g, &lam, OP_g_floss_NUM_COEF, OP_g_floss_NUM_LSH, n_div, 1, 1, emit, ctx);
    /* F12 dW = Q_W_h(g · acc_q >> shift);  F13 W_h = overflow(W_h - dW) */
    for (int i = 0; i < N * N; i++)
        S[i] = g * acc[i];
    requant(net, &o_dw, dW, S, N * N, emit, ctx);
    for (int i = 0; i < N * N; i++)
        net->W_h[i] = overflow(net->W_h[i] - dW[i], OP_W_h_MIN, OP_W_h_MAX, OP_W_h_WORD,
                               &net->counters[CNT_W_h]);
    emit(ctx, "floss_Lam", &Lam, 1, OP_Lam_WORD);
    emit(ctx, "floss_lam", &lam, 1, OP_lam_WORD);
    emit(ctx, "floss_g_floss", &g, 1, OP_g_floss_WORD);
    emit(ctx, "floss_dW_floss", dW, N * N, OP_dW_floss_WORD);
    emit(ctx, "floss_W_h", net->W_h, N * N, OP_W_h_WORD);
    emit(ctx, "floss_overflow_counts", net->counters, EPROP_NCOUNTERS, 64);
    phase = "";
}
