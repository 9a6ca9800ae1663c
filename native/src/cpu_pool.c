/* cpu_pool.c - the cpu backend's thread pool: persistent pthread workers, created when a
 * context opens and joined when it closes, and cpu_parallel_for on top of them.
 *
 * One job at a time per pool. A caller takes the pool with pthread_mutex_trylock(&busy);
 * if another thread holds it (many Java threads may share one context), or if the call
 * comes from inside a running job, the caller just runs the whole range itself. So
 * concurrent callers are always correct and never wait for each other.
 *
 * Handoff: the caller publishes the job under `mu`, bumps `generation` and wakes the
 * workers; everyone (caller included) takes chunk indices from an atomic counter; each
 * worker decrements `pending` under `mu` when it runs out of chunks, and the caller waits
 * for pending == 0 before it releases `busy`. The job fields therefore never change while a
 * worker can still read them. No global state: everything lives in struct cpu_pool.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

/* Chunks per thread: a little more than one so that a slow thread does not hold up the end. */
#define CHUNKS_PER_THREAD 4

struct cpu_pool {
    pthread_mutex_t busy; /* held by the one caller that runs a job on the pool */
    pthread_mutex_t mu;   /* guards everything below except next_chunk */
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    pthread_t* threads;
    int workers;      /* threads started */
    int shutdown;
    uint64_t generation; /* bumped once per job */
    int pending;         /* workers that have not finished the current job */
    /* the current job (written by the caller under mu before generation is bumped) */
    cpu_task_fn fn;
    void* arg;
    int64_t n;
    int64_t nchunks;
    atomic_llong next_chunk;
};

/* Runs chunks of the current job until none is left. Chunk c is [c*n/nchunks,
 * (c+1)*n/nchunks): sizes differ by at most one and are all >= grain. */
static void run_chunks(cpu_pool* p, cpu_task_fn fn, void* arg, int64_t n, int64_t nchunks) {
    for (;;) {
        int64_t c = (int64_t)atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed);
        if (c >= nchunks) break;
        int64_t begin = (int64_t)(((__int128)n * c) / nchunks);
        int64_t end = (int64_t)(((__int128)n * (c + 1)) / nchunks);
        if (end > begin) fn(arg, begin, end);
    }
}

static void* worker_main(void* vp) {
    cpu_pool* p = (cpu_pool*)vp;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->shutdown && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->shutdown) break;
        seen = p->generation;
        cpu_task_fn fn = p->fn;
        void* arg = p->arg;
        int64_t n = p->n, nchunks = p->nchunks;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, fn, arg, n, nchunks);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_free(cpu_pool* p) {
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->busy);
    free(p->threads);
    free(p);
}

static void pool_stop(cpu_pool* p) {
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
}

/* Starts `workers` threads (the threads besides the caller). */
int cpu_pool_create(cpu_pool** out, int workers) {
    *out = NULL;
    if (workers < 1) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "cpu pool: %d workers", workers);
    cpu_pool* p = (cpu_pool*)calloc(1, sizeof *p);
    if (!p) return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "cpu pool: out of memory");
    p->threads = (pthread_t*)calloc((size_t)workers, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "cpu pool: out of memory");
    }
    pthread_mutex_init(&p->busy, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->next_chunk, 0);

    /* Workers block every asynchronous signal: they are left to the host (the JVM). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (int i = 0; i < workers; i++) {
        rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc != 0) break;
        p->workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        int started = p->workers;
        pool_stop(p);
        pool_free(p);
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY,
                          "cpu pool: pthread_create failed (error %d) after %d of %d workers",
                          rc, started, workers);
    }
    *out = p;
    return DSK4J_OK;
}

/* Waits for a job in flight (if any), stops and joins the workers, frees the pool. */
void cpu_pool_destroy(cpu_pool* pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->busy);
    pool_stop(pool);
    pthread_mutex_unlock(&pool->busy);
    pool_free(pool);
}

void cpu_parallel_for(dsk4j_context* ctx, int64_t n, int64_t grain, cpu_task_fn fn, void* arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    cpu_pool* p = ctx ? ctx->pool : NULL;
    if (!p || n <= grain || pthread_mutex_trylock(&p->busy) != 0) {
        fn(arg, 0, n);
        return;
    }
    int64_t nchunks = (int64_t)(p->workers + 1) * CHUNKS_PER_THREAD;
    if (nchunks > n / grain) nchunks = n / grain; /* every chunk >= grain items */
    if (nchunks <= 1) {
        pthread_mutex_unlock(&p->busy);
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->nchunks = nchunks;
    atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
    p->pending = p->workers;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    run_chunks(p, fn, arg, n, nchunks);

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->busy);
}
