/* A block of CSV lines, read into float32 features and written back out with each line's answer.
 *
 * The batch job's hot path (src/csv_block.py loads this with ctypes; the Makefile builds it).
 * Reading keeps to the plain-number grammar, [+-]digits[.digits][(e|E)[+-]digits], and gives the
 * float32 of the correctly rounded double, as Python's float() and a cast would. Anything else
 * (a quote, a blank, nan, a field too many) makes the whole block the caller's to read. */

#define _GNU_SOURCE
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __APPLE__
#include <xlocale.h> /* strtod_l */
#endif

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define EXACT_POW10 22                 /* 10^22 is the largest power of ten a double holds exactly */
#define EXACT_INT (UINT64_C(1) << 53)  /* every integer up to 2^53 is a double exactly */
#define TOKEN_MAX 64

static locale_t c_locale;

/* The token's double from the C library's strtod, correctly rounded, in the C locale. */
static int strtod_token(const char *p, size_t n, double *value) {
    char buf[TOKEN_MAX];
    if (n >= TOKEN_MAX) return 0;
    if (!c_locale && !(c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0))) return 0;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *stop;
    *value = strtod_l(buf, &stop, c_locale);
    return stop == buf + n;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The plain number at p as a float32 in *out, checked to be within +-limit: returns where it ends,
 * or NULL when p holds no plain number or it is out of range. The caller's block ends in '\n',
 * which stops every scan. Up to 19 significant digits and a power of ten within 10^+-22 are
 * done here: exactly when the digits fit a double (one rounding, which is the correct one), else
 * by a double whose error, a few units in its last place, is shown not to change the float32;
 * the rest by strtod. */
static const char *read_number(const char *p, double limit, float *out) {
    const char *token = p;
    int negative = 0, digits = 0, exponent = 0, seen = 0, long_token = 0;
    uint64_t m = 0;
    if (*p == '+' || *p == '-') negative = *p++ == '-';
    for (; is_digit(*p); p++, seen = 1) {
        if (m == 0 && *p == '0') continue;
        if (digits == 19) { long_token = 1; continue; }
        m = m * 10 + (uint64_t)(*p - '0'), digits++;
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++, seen = 1) {
            if (m == 0 && *p == '0') { exponent--; continue; }
            if (digits == 19) { long_token = 1; continue; }
            m = m * 10 + (uint64_t)(*p - '0'), digits++, exponent--;
        }
    }
    if (!seen) return NULL;
    if (*p == 'e' || *p == 'E') {
        int e_negative = 0, e = 0;
        p++;
        if (*p == '+' || *p == '-') e_negative = *p++ == '-';
        if (!is_digit(*p)) return NULL;
        for (; is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exponent += e_negative ? -e : e;
    }

    double value;
    if (m == 0) {
        value = 0.0;
    } else if (long_token || exponent < -EXACT_POW10 || exponent > EXACT_POW10) {
        if (!strtod_token(token, (size_t)(p - token), &value)) return NULL;
        value = fabs(value);
    } else {
        double scale = POW10[exponent < 0 ? -exponent : exponent];
        value = exponent < 0 ? (double)m / scale : (double)m * scale;
        if (m > EXACT_INT) {
            /* Two roundings: |value - exact| < 2.0000001 units in the last place; with the exact
             * value's own rounding, the correctly rounded double is within value +- tolerance. */
            double tolerance = value * 0x1p-50;
            if ((float)(value - tolerance) != (float)(value + tolerance) || value + tolerance > limit) {
                if (!strtod_token(token, (size_t)(p - token), &value)) return NULL;
                value = fabs(value);
            }
        }
    }
    if (!(value <= limit)) return NULL;
    *out = (float)(negative ? -value : value);
    return p;
}

/* The number of '\n' in block[0..size). */
long count_lines(const char *block, size_t size) {
    long lines = 0;
    for (const char *p = block, *end = block + size; (p = memchr(p, '\n', (size_t)(end - p))); p++) lines++;
    return lines;
}

/* The rows of block[0..size) (whole lines, each ending in '\n', no quotes or carriage returns),
 * `width` fields each: column c's number goes to out[row * n_features + feature[c]] when
 * feature[c] >= 0, and other columns are skipped. Returns the number of rows, or -1 when any line
 * has another number of fields, or any feature is not a plain number within +-limit. */
long read_features(const char *block, size_t size, int width, const int *feature, int n_features,
                   double limit, float *out, long max_rows) {
    const char *p = block, *end = block + size;
    long row = 0;
    if (size == 0 || end[-1] != '\n') return size == 0 ? 0 : -1;
    while (p < end) {
        if (row == max_rows) return -1;
        float *values = out + row * n_features;
        for (int column = 0; column < width; column++) {
            if (feature[column] >= 0) {
                if (!(p = read_number(p, limit, values + feature[column]))) return -1;
            } else {
                while (*p != ',' && *p != '\n') p++;
            }
            if (*p != (column == width - 1 ? '\n' : ',')) return -1;
            p++;
        }
        row++;
    }
    return row;
}

/* Each line of lines[0..size) (each ending in '\n') followed by ",<label>,<text>": the row's label
 * character from labels[row], its text the row's comma-separated token of texts[0..texts_size).
 * Writes to out, which holds size + rows * 3 + texts_size + 1 bytes; returns the bytes written. */
size_t write_scored(const char *lines, size_t size, const char *labels, const char *texts,
                    size_t texts_size, char *out) {
    const char *end = lines + size, *text = texts, *texts_end = texts + texts_size;
    char *o = out;
    for (size_t row = 0; lines < end; row++) {
        const char *line_end = memchr(lines, '\n', (size_t)(end - lines));
        if (!line_end) line_end = end;
        memcpy(o, lines, (size_t)(line_end - lines));
        o += line_end - lines;
        *o++ = ',';
        *o++ = labels[row];
        *o++ = ',';
        const char *text_end = memchr(text, ',', (size_t)(texts_end - text));
        if (!text_end) text_end = texts_end;
        memcpy(o, text, (size_t)(text_end - text));
        o += text_end - text;
        *o++ = '\n';
        text = text_end + 1;
        lines = line_end + 1;
    }
    return (size_t)(o - out);
}
