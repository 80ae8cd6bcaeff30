/*
 * ticks.h — axis scales and their ticks: data ranges padded the way
 * matplotlib pads them, "nice" 1-2-5 ticks on linear axes, decades with
 * minor ticks on log axes, and the tick labels.
 */
#ifndef GRADLAB_PLOT_TICKS_H
#define GRADLAB_PLOT_TICKS_H

#include <stdbool.h>

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

/* The shown range of an axis.  lo may exceed hi (a flipped axis, e.g. the
 * rows of a heatmap counted from the top).  On a log axis both are > 0. */
typedef struct scale {
    double lo, hi;
    bool log;
} scale;

/* Where v falls on the scale: 0 at lo, 1 at hi. */
double scale_unit(const scale *s, double v);

/* Fits a scale around data in [min, max] (min > max when there are no
 * data), padded by `margin` of the span on each side, in log space on a log
 * axis.  Constant data get a sensible span around the value. */
void scale_fit(scale *s, double min, double max, bool log, double margin);

#define TICK_LABEL_MAX 72
#define TICKS_MAX 240

typedef struct tick {
    double value;
    bool major;                 /* majors are labelled and get gridlines */
    char label[TICK_LABEL_MAX]; /* UTF-8, "" for minor ticks */
} tick;

typedef struct tick_list {
    int n;
    tick items[TICKS_MAX];
    char multiplier[16];        /* "1e7" when labels are in units of 1e7, else "" */
} tick_list;

/* Ticks inside the scale with at most `max_labels` labelled ones (at least
 * two are labelled whenever the range allows). */
void ticks_make(const scale *s, int max_labels, tick_list *out);

/* Whether a linear axis over [lo, hi] labels in units of a power of ten
 * (beyond 1e6 or under 1e-4, matplotlib's limits). */
bool ticks_need_multiplier(double lo, double hi);

/* Recomputes a linear tick list with steps of at least 1 and no more
 * labels than it had: for counts, steps and rows. */
void ticks_integer(const scale *s, tick_list *list);

/* Appends a tick (ignored when the list is full). */
void ticks_add(tick_list *list, double value, bool major, const char *label);

#pragma GCC visibility pop

#endif
