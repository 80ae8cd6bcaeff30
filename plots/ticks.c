/* ticks.c — scale fitting, tick placement and tick labels. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ticks.h"

#define MINUS "\xe2\x88\x92"   /* U+2212, the typographic minus sign */

double scale_unit(const scale *s, double v)
{
    if (s->log) {
        double a = log10(s->lo), b = log10(s->hi);
        return (log10(v) - a) / (b - a);
    }
    return (v - s->lo) / (s->hi - s->lo);
}

void scale_fit(scale *s, double min, double max, bool log, double margin)
{
    s->log = log;
    if (log) {
        if (!(min <= max) || !(min > 0)) {
            s->lo = 1;
            s->hi = 10;
            return;
        }
        double a = log10(min), b = log10(max);
        if (b - a < 1e-9) {
            /* One value: half a decade either side keeps its decade labelled. */
            a -= 0.5;
            b += 0.5;
        } else {
            double pad = (b - a) * margin;
            a -= pad;
            b += pad;
        }
        s->lo = pow(10, a);
        s->hi = pow(10, b);
        if (!(s->lo > 0)) s->lo = DBL_MIN;
        if (!isfinite(s->hi)) s->hi = DBL_MAX;
        return;
    }
    if (!(min <= max)) {
        s->lo = 0;
        s->hi = 1;
        return;
    }
    double span = max - min;
    if (!(span > 1e-12 * fmax(fabs(min), fabs(max)))) {
        /* Constant data: matplotlib's nonsingular expansion (5 % of |v|, or
         * +-1 around zero), so the value sits mid-axis with readable ticks. */
        double d = min == 0 ? 1 : fabs(min) * 0.05;
        s->lo = min - d;
        s->hi = max + d;
        return;
    }
    /* Spans near the double range would overflow when padded. */
    if (!isfinite(span)) {
        s->lo = min;
        s->hi = max;
        return;
    }
    s->lo = min - span * margin;
    s->hi = max + span * margin;
}

void ticks_add(tick_list *list, double value, bool major, const char *label)
{
    if (list->n >= TICKS_MAX) return;
    tick *t = &list->items[list->n++];
    t->value = value;
    t->major = major;
    snprintf(t->label, sizeof t->label, "%s", label ? label : "");
}

/* Replaces a leading '-' by the minus sign, as matplotlib prints negatives. */
static void set_label(char *out, const char *text)
{
    if (text[0] == '-')
        snprintf(out, TICK_LABEL_MAX, MINUS "%.32s", text + 1);
    else
        snprintf(out, TICK_LABEL_MAX, "%.36s", text);
}

/* ----------------------------------------------------------- linear */

static void ticks_linear(double lo, double hi, int max_labels, double min_step, tick_list *out)
{
    double span = hi - lo;
    if (!(span > 0) || !isfinite(span)) return;
    if (max_labels < 2) max_labels = 2;
    /* Smallest 1-2-5 step that keeps the count within max_labels. */
    double mag = pow(10, floor(log10(span / max_labels)));
    static const double mult[] = {1, 2, 5, 10, 20, 50};
    double step = mag * 10;
    long first = 0, last = -1;
    for (size_t i = 0; i < sizeof mult / sizeof *mult; i++) {
        double s = mag * mult[i];
        if (s < min_step) continue;
        long f = (long)ceil(lo / s - 1e-9), l = (long)floor(hi / s + 1e-9);
        if (l - f + 1 <= max_labels) {
            step = s;
            first = f;
            last = l;
            break;
        }
    }
    if (step < min_step) step = min_step;
    if (last < first) {
        first = (long)ceil(lo / step - 1e-9);
        last = (long)floor(hi / step + 1e-9);
    }
    if (last - first >= TICKS_MAX) last = first + TICKS_MAX - 1;   /* never loop long */
    /* Very large or small numbers get a common multiplier shown once at
     * the end of the axis ("1e7"), as matplotlib's offset text, and the
     * labels keep few digits. */
    double vmax = fmax(fabs(first * step), fabs(last * step));
    int exponent = 0;
    if (ticks_need_multiplier(lo, hi) && vmax > 0) {
        exponent = (int)floor(log10(vmax) + 1e-9);
        snprintf(out->multiplier, sizeof out->multiplier, "1e%d", exponent);
    }
    double unit = pow(10, exponent);
    int decimals = (int)fmax(0, -floor(log10(step / unit) + 1e-9));
    for (long k = first; k <= last; k++) {
        double v = (double)k * step;
        char text[TICK_LABEL_MAX], label[TICK_LABEL_MAX];
        if (k == 0)
            snprintf(text, sizeof text, "0");
        else
            snprintf(text, sizeof text, "%.*f", decimals, v / unit);
        set_label(label, text);
        ticks_add(out, v, true, label);
    }
}

/* -------------------------------------------------------------- log */

/* Label of m * 10^e on a log axis: plain digits when every label of the
 * axis lies in [1e-3, 1e4), else "1e-8" style. */
static void log_label(int m, int e, bool plain, char *out)
{
    char text[TICK_LABEL_MAX];
    if (plain) {
        double v = m * pow(10, e);
        snprintf(text, sizeof text, "%.*f", e < 0 ? -e : 0, v);
    } else {
        snprintf(text, sizeof text, "%de%d", m, e);
    }
    set_label(out, text);
}

static void ticks_log(double lo, double hi, int max_labels, tick_list *out)
{
    double a = log10(lo), b = log10(hi);
    if (!(b > a)) return;
    if (max_labels < 2) max_labels = 2;
    int d0 = (int)ceil(a - 1e-9), d1 = (int)floor(b + 1e-9);
    int ndec = d1 - d0 + 1;
    if (ndec >= 2) {
        int stride = (ndec + max_labels - 1) / max_labels;
        /* Labelled decades sit at multiples of the stride (1e-10, 1e-5, 1e0). */
        bool plain = true;
        for (int d = d0; d <= d1; d++)
            if (d % stride == 0 && (d < -3 || d > 3)) plain = false;
        bool subs = b - a <= 10;   /* 2..9 minor ticks while they stay apart */
        for (int d = (int)floor(a); d <= d1; d++) {
            if (d >= d0) {
                bool major = d % stride == 0;
                char label[TICK_LABEL_MAX] = "";
                if (major) log_label(1, d, plain, label);
                if (major || b - a <= 60) ticks_add(out, pow(10, d), major, label);
            }
            if (subs)
                for (int m = 2; m <= 9; m++) {
                    double v = m * pow(10, d);
                    if (v >= lo && v <= hi) ticks_add(out, v, false, NULL);
                }
        }
        return;
    }
    /* Less than two decades in view: label 1-2-5 multiples, then every
     * multiple, and only as a last resort fall back to linear ticks. */
    static const int sets[2][9] = {{1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
    static const int set_len[2] = {3, 9};
    for (int s = 0; s < 2; s++) {
        int count = 0;
        bool plain = true;
        for (int d = (int)floor(a); d <= (int)ceil(b); d++)
            for (int i = 0; i < set_len[s]; i++) {
                double v = sets[s][i] * pow(10, d);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) {
                    count++;
                    if (d < -3 || d > 3) plain = false;
                }
            }
        if (count < (s == 0 ? 3 : 2) || count > max_labels) continue;
        for (int d = (int)floor(a); d <= (int)ceil(b); d++)
            for (int m = 1; m <= 9; m++) {
                double v = m * pow(10, d);
                if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
                bool major = false;
                for (int i = 0; i < set_len[s]; i++) major = major || sets[s][i] == m;
                char label[TICK_LABEL_MAX] = "";
                if (major) log_label(m, d, plain, label);
                ticks_add(out, v, major, label);
            }
        return;
    }
    ticks_linear(lo, hi, max_labels, 0, out);
}

void ticks_integer(const scale *s, tick_list *list)
{
    if (s->log) return;
    int majors = 0;
    for (int i = 0; i < list->n; i++) majors += list->items[i].major;
    list->n = 0;
    list->multiplier[0] = '\0';
    ticks_linear(fmin(s->lo, s->hi), fmax(s->lo, s->hi), majors > 2 ? majors : 2, 1, list);
}

bool ticks_need_multiplier(double lo, double hi)
{
    double vmax = fmax(fabs(lo), fabs(hi));
    return vmax >= 1e6 || (vmax > 0 && vmax < 1e-4);
}

void ticks_make(const scale *s, int max_labels, tick_list *out)
{
    out->n = 0;
    out->multiplier[0] = '\0';
    double lo = fmin(s->lo, s->hi), hi = fmax(s->lo, s->hi);
    if (s->log)
        ticks_log(lo, hi, max_labels, out);
    else
        ticks_linear(lo, hi, max_labels, 0, out);
}
