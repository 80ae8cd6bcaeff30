/*
 * monitor_record.c — the gradient monitor's recorder: watched parameters,
 * module slots, and every recorded value in column arrays (gradlab.h).
 *
 * A step costs one statistics pass per module output (in forward, while the
 * data is hot), one per watched backward signal (in backward, norm only), one
 * per parameter gradient (at record), and stores doubles: no objects are made,
 * so memory grows by the numbers kept and nothing else.
 *
 * Layout: record r's value of parameter p, field f, is
 * param_values[f][r * nparams + p]; presence bits in param_flags at the same
 * place.  Modules likewise.  All columns grow together (doubling).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "monitor.h"

enum { PARAM_GRAD = 1, PARAM_UPDATE = 2 };                  /* param_flags */
enum { MODULE_SEEN = 1, MODULE_SAT = 2, MODULE_GRAD_OUT = 4 }; /* module_flags */
enum { STEP_LOSS = 1, STEP_CLIP = 2 };                       /* step_flags */
enum { WARNED_VANISHING = 1, WARNED_EXPLODING = 2, WARNED_NONFINITE = 4 };

typedef struct module_slot {
    bool band;
    float low, high;
    unsigned char warned;
    /* What forward saw on the step being recorded. */
    bool pending;
    double act[GL_MONITOR_GRAD_OUT_NORM];   /* mean, std, zero and saturated fractions */
    int64_t act_nonfinite;
    gl_node *watched;                        /* retained: its backward signal */
} module_slot;

struct gl_monitor {
    int refcount;
    double vanish, explode;
    bool armed, detached;

    int64_t nparams, param_capacity;
    gl_tensor **params;
    unsigned char *param_warned;

    int64_t nmodules, module_capacity;
    module_slot *modules;

    int64_t count, capacity;   /* records */
    double *steps, *losses, *clip_pre, *clip_post;
    unsigned char *step_flags;
    double *param_values[GL_MONITOR_PARAM_FIELDS];
    unsigned char *param_flags;
    double *module_values[GL_MONITOR_MODULE_FIELDS];
    unsigned char *module_flags;

    bool stepped;              /* the optimizer stepped since the last record */
    bool clip_pending;
    double pending_pre, pending_post;
    uint64_t version;

    int64_t nwarnings, warning_capacity;
    gl_monitor_warning *warnings;
};

gl_status gl_monitor_new(double vanish, double explode, gl_monitor **out, gl_error *err)
{
    *out = NULL;
    if (!(vanish > 0) || !(explode > 0))
        return gl_error_set(err, GL_EARG, 1, "monitor: vanish and explode must be positive (got %g, %g)", vanish,
                            explode);
    gl_monitor *m = calloc(1, sizeof *m);
    if (!m) return gl_error_set(err, GL_ENOMEM, 0, "monitor: out of memory");
    m->refcount = 1;
    m->vanish = vanish, m->explode = explode;
    m->armed = true;   /* the first forward is always observed: its step is not known yet */
    *out = m;
    return GL_OK;
}

void gl_monitor_retain(gl_monitor *m) { m->refcount++; }

static void drop_pending(gl_monitor *m)
{
    for (int64_t i = 0; i < m->nmodules; i++) {
        module_slot *slot = &m->modules[i];
        slot->pending = false;
        gl_node_release(slot->watched);
        slot->watched = NULL;
    }
}

void gl_monitor_release(gl_monitor *m)
{
    if (!m || --m->refcount > 0) return;
    drop_pending(m);
    for (int64_t i = 0; i < m->nparams; i++) gl_tensor_release(m->params[i]);
    free(m->params);
    free(m->param_warned);
    free(m->modules);
    free(m->steps);
    free(m->losses);
    free(m->clip_pre);
    free(m->clip_post);
    free(m->step_flags);
    for (int f = 0; f < GL_MONITOR_PARAM_FIELDS; f++) free(m->param_values[f]);
    free(m->param_flags);
    for (int f = 0; f < GL_MONITOR_MODULE_FIELDS; f++) free(m->module_values[f]);
    free(m->module_flags);
    free(m->warnings);
    free(m);
}

/* Grows *array to `capacity` items of `size` bytes; false (array untouched) on failure. */
static bool grow(void **array, size_t capacity, size_t size)
{
    if (capacity > SIZE_MAX / size) return false;
    void *grown = realloc(*array, capacity * size);
    if (!grown) return false;
    *array = grown;
    return true;
}

gl_status gl_monitor_add_param(gl_monitor *m, gl_tensor *param, int64_t *index, gl_error *err)
{
    if (m->count > 0)
        return gl_error_set(err, GL_ESTATE, 1, "monitor: parameters can only be added before the first record");
    if (m->nparams == m->param_capacity) {
        int64_t capacity = m->param_capacity ? 2 * m->param_capacity : 16;
        if (!grow((void **)&m->params, (size_t)capacity, sizeof *m->params)
            || !grow((void **)&m->param_warned, (size_t)capacity, 1))
            return gl_error_set(err, GL_ENOMEM, 0, "monitor: out of memory");
        m->param_capacity = capacity;
    }
    gl_tensor_retain(param);
    m->params[m->nparams] = param;
    m->param_warned[m->nparams] = 0;
    *index = m->nparams++;
    return GL_OK;
}

gl_status gl_monitor_add_module(gl_monitor *m, bool band, float low, float high, int64_t *index, gl_error *err)
{
    if (m->count > 0)
        return gl_error_set(err, GL_ESTATE, 1, "monitor: modules can only be added before the first record");
    if (band && !(low <= high))
        return gl_error_set(err, GL_EARG, 2, "monitor: a saturation band needs low <= high (got %g, %g)", low, high);
    if (m->nmodules == m->module_capacity) {
        int64_t capacity = m->module_capacity ? 2 * m->module_capacity : 16;
        if (!grow((void **)&m->modules, (size_t)capacity, sizeof *m->modules))
            return gl_error_set(err, GL_ENOMEM, 0, "monitor: out of memory");
        m->module_capacity = capacity;
    }
    m->modules[m->nmodules] = (module_slot){.band = band, .low = low, .high = high};
    *index = m->nmodules++;
    return GL_OK;
}

int64_t gl_monitor_param_count(const gl_monitor *m) { return m->nparams; }
int64_t gl_monitor_module_count(const gl_monitor *m) { return m->nmodules; }

void gl_monitor_observe(gl_monitor *m, int64_t module, gl_tensor *output)
{
    if (!m->armed || m->detached || module < 0 || module >= m->nmodules) return;
    module_slot *slot = &m->modules[module];
    gl_tensor_stats s;
    gl_stats_scan(output, GL_STATS_SUM | GL_STATS_ZEROS | (slot->band ? GL_STATS_BAND : 0), slot->low, slot->high,
                  &s);
    double finite = (double)(s.count - s.nonfinite);
    double mean = finite > 0 ? s.sum / finite : NAN;
    double variance = finite > 0 ? s.sum_squares / finite - mean * mean : NAN;
    slot->act[GL_MONITOR_ACT_MEAN] = mean;
    slot->act[GL_MONITOR_ACT_STD] = variance > 0 ? sqrt(variance) : 0.0;
    slot->act[GL_MONITOR_ACT_ZERO_FRAC] = s.count > 0 ? (double)s.zeros / (double)s.count : 0.0;
    slot->act[GL_MONITOR_ACT_SAT_FRAC] = finite > 0 ? (double)s.saturated / finite : 0.0;
    slot->act_nonfinite = s.nonfinite;
    slot->pending = true;
    gl_node *node = output->grad_fn;
    if (node != slot->watched) {
        gl_node_release(slot->watched);
        slot->watched = node;
        if (node) node->refcount++;
    }
    if (node) {
        node->watch = true;   /* the norm alone, unless someone asked for more */
        node->watch_seen = false;
    }
}

static bool warn(gl_monitor *m, unsigned char *warned, unsigned char bit, gl_monitor_warning w)
{
    if (*warned & bit) return false;
    if (m->nwarnings == m->warning_capacity) {
        int64_t capacity = m->warning_capacity ? 2 * m->warning_capacity : 16;
        if (!grow((void **)&m->warnings, (size_t)capacity, sizeof *m->warnings)) return false;  /* lose it, not the run */
        m->warning_capacity = capacity;
    }
    *warned |= bit;
    m->warnings[m->nwarnings++] = w;
    return true;
}

/* Room for one more record in every column. */
static bool reserve_record(gl_monitor *m)
{
    if (m->count < m->capacity) return true;
    int64_t capacity = m->capacity ? 2 * m->capacity : 64;
    size_t c = (size_t)capacity, pc = c * (size_t)(m->nparams ? m->nparams : 1);
    size_t mc = c * (size_t)(m->nmodules ? m->nmodules : 1);
    if (!grow((void **)&m->steps, c, sizeof(double)) || !grow((void **)&m->losses, c, sizeof(double))
        || !grow((void **)&m->clip_pre, c, sizeof(double)) || !grow((void **)&m->clip_post, c, sizeof(double))
        || !grow((void **)&m->step_flags, c, 1) || !grow((void **)&m->param_flags, pc, 1)
        || !grow((void **)&m->module_flags, mc, 1))
        return false;
    for (int f = 0; f < GL_MONITOR_PARAM_FIELDS; f++)
        if (!grow((void **)&m->param_values[f], pc, sizeof(double))) return false;
    for (int f = 0; f < GL_MONITOR_MODULE_FIELDS; f++)
        if (!grow((void **)&m->module_values[f], mc, sizeof(double))) return false;
    m->capacity = capacity;   /* only once every column has grown */
    return true;
}

gl_status gl_monitor_record(gl_monitor *m, double step, int64_t every, const double *loss, bool *recorded,
                            int64_t *new_warnings, gl_error *err)
{
    *recorded = false;
    *new_warnings = 0;
    if (!isfinite(step)) return gl_error_set(err, GL_EARG, 1, "record: the step must be a finite number, got %g", step);
    if (every < 1) return gl_error_set(err, GL_EARG, 3, "record: every must be at least 1, got %lld", (long long)every);
    /* Forward observes only before a step that will be kept. */
    m->armed = !m->detached && (every == 1 || fmod(step + 1, (double)every) == 0);
    if (fmod(step, (double)every) != 0) {
        drop_pending(m);
        return GL_OK;
    }
    if (!reserve_record(m)) return gl_error_set(err, GL_ENOMEM, 0, "record: out of memory growing the records");
    int64_t r = m->count, before = m->nwarnings;
    m->steps[r] = step;
    m->losses[r] = loss ? *loss : NAN;
    m->step_flags[r] = loss ? STEP_LOSS : 0;
    if (m->clip_pending) {
        m->clip_pre[r] = m->pending_pre, m->clip_post[r] = m->pending_post;
        m->step_flags[r] |= STEP_CLIP;
        m->clip_pending = false;
    }

    double *values[GL_MONITOR_PARAM_FIELDS];
    for (int f = 0; f < GL_MONITOR_PARAM_FIELDS; f++) values[f] = m->param_values[f] + r * m->nparams;
    unsigned char *flags = m->param_flags + r * m->nparams;
    for (int64_t p = 0; p < m->nparams; p++) {
        const gl_tensor *g = m->params[p]->grad;
        flags[p] = 0;
        for (int f = 0; f < GL_MONITOR_PARAM_FIELDS; f++) values[f][p] = NAN;
        if (!g) continue;
        gl_tensor_stats s;
        gl_stats_scan(g, GL_STATS_SUM | GL_STATS_TOP, 0, 0, &s);
        double finite = (double)(s.count - s.nonfinite), norm = sqrt(s.sum_squares);
        flags[p] = PARAM_GRAD;
        values[GL_MONITOR_GRAD_NORM][p] = s.nonfinite > 0 ? NAN : norm;
        values[GL_MONITOR_GRAD_MEAN][p] = finite > 0 ? s.sum / finite : NAN;
        values[GL_MONITOR_GRAD_MAX][p] = s.max_abs;
        gl_monitor_warning w = {.index = p, .step = step, .value = norm};
        if (s.nonfinite > 0) {
            w.kind = GL_MONITOR_NONFINITE, w.direction = GL_MONITOR_BACKWARD, w.value = NAN;
            warn(m, &m->param_warned[p], WARNED_NONFINITE, w);
        } else if (norm < m->vanish) {
            w.kind = GL_MONITOR_VANISHING;
            warn(m, &m->param_warned[p], WARNED_VANISHING, w);
        } else if (norm > m->explode) {
            w.kind = GL_MONITOR_EXPLODING;
            warn(m, &m->param_warned[p], WARNED_EXPLODING, w);
        }
    }

    unsigned char *module_flags = m->module_flags + r * m->nmodules;
    for (int64_t i = 0; i < m->nmodules; i++) {
        module_slot *slot = &m->modules[i];
        for (int f = 0; f < GL_MONITOR_MODULE_FIELDS; f++) m->module_values[f][r * m->nmodules + i] = NAN;
        module_flags[i] = 0;
        if (!slot->pending) continue;
        for (int f = 0; f < GL_MONITOR_GRAD_OUT_NORM; f++) m->module_values[f][r * m->nmodules + i] = slot->act[f];
        module_flags[i] = MODULE_SEEN | (slot->band ? MODULE_SAT : 0);
        gl_monitor_warning w = {.kind = GL_MONITOR_NONFINITE, .module = true, .index = i, .step = step,
                                .value = NAN, .direction = GL_MONITOR_FORWARD};
        if (slot->act_nonfinite > 0) warn(m, &slot->warned, WARNED_NONFINITE, w);
        gl_node *node = slot->watched;
        if (node && node->watch_seen) {
            const gl_tensor_stats *g = &node->watch_stats;
            m->module_values[GL_MONITOR_GRAD_OUT_NORM][r * m->nmodules + i] =
                g->nonfinite > 0 ? NAN : sqrt(g->sum_squares);
            module_flags[i] |= MODULE_GRAD_OUT;
            w.direction = GL_MONITOR_BACKWARD;
            if (g->nonfinite > 0) warn(m, &slot->warned, WARNED_NONFINITE, w);
        }
    }
    drop_pending(m);
    m->count++;
    m->stepped = false;
    m->version++;
    *recorded = true;
    *new_warnings = m->nwarnings - before;
    return GL_OK;
}

void gl_monitor_note_update(gl_monitor *m, int64_t param, const gl_update_norms *norms)
{
    if (m->count == 0 || param < 0 || param >= m->nparams) return;
    int64_t at = (m->count - 1) * m->nparams + param;
    if ((m->param_flags[at] & PARAM_GRAD) && !(m->param_flags[at] & PARAM_UPDATE)) {
        /* A second step after one record keeps the first. */
        double update = sqrt(norms->update_squares), weight = sqrt(norms->param_squares);
        m->param_values[GL_MONITOR_UPDATE_RATIO][at] =
            weight > 0 ? update / weight : (update > 0 ? INFINITY : 0.0);
        m->param_flags[at] |= PARAM_UPDATE;
        m->version++;
    }
    m->stepped = true;
}

void gl_monitor_note_clip(gl_monitor *m, double pre, double post)
{
    int64_t r = m->count - 1;
    if (m->count > 0 && !m->stepped && !(m->step_flags[r] & STEP_CLIP)) {
        m->clip_pre[r] = pre, m->clip_post[r] = post;
        m->step_flags[r] |= STEP_CLIP;
        m->version++;
    } else {
        m->clip_pending = true;
        m->pending_pre = pre, m->pending_post = post;
    }
}

void gl_monitor_detach(gl_monitor *m)
{
    m->detached = true;
    m->armed = false;
    drop_pending(m);
}

int64_t gl_monitor_record_count(const gl_monitor *m) { return m->count; }
uint64_t gl_monitor_version(const gl_monitor *m) { return m->version; }

bool gl_monitor_step_info_get(const gl_monitor *m, int64_t record, gl_monitor_step_info *info)
{
    if (record < 0 || record >= m->count) return false;
    unsigned char flags = m->step_flags[record];
    *info = (gl_monitor_step_info){
        .step = m->steps[record], .loss = m->losses[record], .has_loss = flags & STEP_LOSS,
        .has_clip = flags & STEP_CLIP, .clip_pre = m->clip_pre[record], .clip_post = m->clip_post[record],
    };
    return true;
}

bool gl_monitor_param_value(const gl_monitor *m, int64_t record, int64_t param, gl_monitor_param_field field,
                            double *value)
{
    if (record < 0 || record >= m->count || param < 0 || param >= m->nparams || (unsigned)field >= GL_MONITOR_PARAM_FIELDS)
        return false;
    int64_t at = record * m->nparams + param;
    unsigned char need = field == GL_MONITOR_UPDATE_RATIO ? PARAM_UPDATE : PARAM_GRAD;
    if (!(m->param_flags[at] & need)) return false;
    *value = m->param_values[field][at];
    return true;
}

bool gl_monitor_module_value(const gl_monitor *m, int64_t record, int64_t module, gl_monitor_module_field field,
                             double *value)
{
    if (record < 0 || record >= m->count || module < 0 || module >= m->nmodules
        || (unsigned)field >= GL_MONITOR_MODULE_FIELDS)
        return false;
    int64_t at = record * m->nmodules + module;
    unsigned char need = field == GL_MONITOR_GRAD_OUT_NORM ? MODULE_GRAD_OUT
                         : field == GL_MONITOR_ACT_SAT_FRAC ? MODULE_SAT
                                                            : MODULE_SEEN;
    if (!(m->module_flags[at] & need)) return false;
    *value = m->module_values[field][at];
    return true;
}

int64_t gl_monitor_warning_count(const gl_monitor *m) { return m->nwarnings; }

bool gl_monitor_warning_get(const gl_monitor *m, int64_t index, gl_monitor_warning *warning)
{
    if (index < 0 || index >= m->nwarnings) return false;
    *warning = m->warnings[index];
    return true;
}

size_t gl_monitor_bytes(const gl_monitor *m)
{
    size_t records = (size_t)m->capacity, params = (size_t)(m->nparams ? m->nparams : 1);
    size_t modules = (size_t)(m->nmodules ? m->nmodules : 1);
    return sizeof *m + (size_t)m->param_capacity * (sizeof *m->params + 1)
           + (size_t)m->module_capacity * sizeof *m->modules
           + records * (4 * sizeof(double) + 1)
           + records * params * (GL_MONITOR_PARAM_FIELDS * sizeof(double) + 1)
           + records * modules * (GL_MONITOR_MODULE_FIELDS * sizeof(double) + 1)
           + (size_t)m->warning_capacity * sizeof *m->warnings;
}
