/* Thread records: registration on first use, the registry the advancer walks,
 * and exit through a pthread key destructor.
 *
 * A record is owned by its thread while the thread lives and is never freed
 * under it: at exit the thread writes THREAD_EXIT and forgets the record, and
 * the advancer frees it once the generation holding the exit is complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fr_internal.h"

__thread struct fr_thread *fr__self FR_TLS;
static __thread bool self_gone FR_TLS; /* exited: never register again */

static struct {
        pthread_mutex_t lock;
        struct fr_thread *head;
        pthread_key_t key;
        pthread_once_t key_once;
        int key_err;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER, .key_once = PTHREAD_ONCE_INIT};

void fr__threads_lock(void) { pthread_mutex_lock(&reg.lock); }
void fr__threads_unlock(void) { pthread_mutex_unlock(&reg.lock); }
struct fr_thread *fr__threads_head(void) { return reg.head; }

static void on_thread_exit(void *arg) {
        struct fr_thread *t = arg;
        fr__wait_close_at_exit(t);
        /* Before the record can be freed; under the lock, as the advancer's
         * descriptor checks may re-arm the same record. */
        fr__threads_lock();
        fr__sampler_disarm(t);
        fr__threads_unlock();
        fr__altstack_release(t);
        fr__self = NULL;
        self_gone = true;
        if (atomic_load(&fr__running)) {
                fr__write_thread_exit(t);
                return; /* the advancer frees t */
        }
        /* Not recording: nobody will flush; unlink and free now. */
        fr__threads_lock();
        for (struct fr_thread **pp = &reg.head; *pp; pp = &(*pp)->next) {
                if (*pp == t) {
                        *pp = t->next;
                        break;
                }
        }
        fr__threads_unlock();
        fr__pool_put_chain(t->buf[0]);
        fr__pool_put_chain(t->buf[1]);
        fr__samples_free(t);
        free(t);
}

static void make_key(void) { reg.key_err = pthread_key_create(&reg.key, on_thread_exit); }

/* Set while the thread registers: the registry lock's wrapped
 * pthread_mutex_lock must not register it a second time (fr_wait.c). */
static __thread bool registering FR_TLS;

bool fr__thread_registering(void) { return registering; }

static struct fr_thread *register_one(void);

static struct fr_thread *register_self(void) {
        if (self_gone || registering || !atomic_load(&fr__running))
                return NULL;
        registering = true;
        struct fr_thread *t = register_one();
        registering = false;
        return t;
}

static struct fr_thread *register_one(void) {
        pthread_once(&reg.key_once, make_key);
        if (reg.key_err)
                return NULL;
        struct fr_thread *t, *fresh;
        if (posix_memalign((void **)&fresh, FR_CACHELINE, sizeof *fresh))
                return NULL;
        memset(fresh, 0, sizeof *fresh);
        fresh->tid = gettid();
        fresh->owned = true;
        fresh->samples.perf_fd = fresh->samples.timer_slot = -1;
        /* One lock hold for both the lookup and the link: the sampler's scan
         * (which adopts threads it finds without a record) cannot slip in. A
         * record it made for this thread is taken over, samples and all. */
        fr__threads_lock();
        for (t = reg.head; t; t = t->next)
                if (t->tid == fresh->tid && t->adopted && !t->owned && !atomic_load(&t->exit_gen))
                        break;
        if (t) {
                t->owned = true;
        } else {
                t = fresh;
                t->next = reg.head;
                reg.head = t;
        }
        fr__threads_unlock();
        if (t != fresh)
                free(fresh);
        /* The key's destructor (thread exit) needs the record; a failure here
         * is out of memory at thread start and leaves the record unowned, as
         * an adopted one, which the scan retires when the thread is gone. */
        if (pthread_setspecific(reg.key, t)) {
                t->owned = false;
                t->adopted = true;
                return NULL;
        }
        fr__self = t;
        if (t == fresh) {
                char name[17] = {0};
                prctl(PR_GET_NAME, name);
                fr__write_thread_start(t, name);
        }
        /* Under the registry lock, as the sampler's scan and the advancer's
         * re-arms arm records (an adopted one taken over here among them):
         * never two arms of one record at once (found by TSan). */
        fr__threads_lock();
        fr__sampler_arm(t, true); /* also learns the stack bounds */
        fr__threads_unlock();
        return t;
}

void fr__thread_comm(pid_t tid, char *ret_name, size_t len) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
        if (fr__read_file(path, ret_name, len) < 0)
                ret_name[0] = '\0';
        ret_name[strcspn(ret_name, "\n")] = '\0';
}

bool fr__thread_exists(pid_t tid) {
        char path[48];
        snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
        return access(path, F_OK) == 0;
}

void fr__threads_add_locked(struct fr_thread *t) {
        t->next = reg.head;
        reg.head = t;
}

struct fr_thread *fr__thread_register(void) { return register_self(); }

void fr__threads_reap(uint64_t completed_gen) {
        for (struct fr_thread **pp = &reg.head; *pp;) {
                struct fr_thread *t = *pp;
                uint64_t eg = atomic_load_explicit(&t->exit_gen, memory_order_acquire);
                if (eg && eg <= completed_gen) {
                        *pp = t->next;
                        fr__sampler_disarm(t);
                        fr__samples_free(t);
                        fr__altstack_free_record(t); /* an adopted thread's: it is gone */
                        free(t);
                } else {
                        pp = &t->next;
                }
        }
}

void fr__threads_destroy(void) {
        /* Records of live threads stay (their threads hold them); only exited
         * ones are freed. Buffers are dropped with the pool. */
        fr__threads_lock();
        fr__threads_reap(UINT64_MAX);
        for (struct fr_thread *t = reg.head; t; t = t->next) {
                t->buf[0] = t->buf[1] = NULL;
                t->full_head[0] = t->full_head[1] = NULL;
                t->full_tail[0] = t->full_tail[1] = NULL;
                t->depth = 0;
                memset(t->lost_events, 0, sizeof t->lost_events);
                memset(t->lost_regions, 0, sizeof t->lost_regions);
                t->shadow_alive = false;
                t->shadow_depth = 0;
                t->shadow_name = 0;
                t->samples.pos[0] = t->samples.pos[1] = 0;
                t->found_gen = t->gone_gen = 0; /* generation numbers restart */
                t->samples.lost[0] = t->samples.lost[1] = 0;
        }
        fr__threads_unlock();
}

void fr__thread_forget_self(void) {
        /* After fork, in the child: the records of the parent's threads are
         * garbage (their threads do not exist here). */
        struct fr_thread *t = reg.head;
        while (t) {
                struct fr_thread *next = t->next;
                fr__samples_free(t); /* its sampler was closed by fr__sampler_forget */
                fr__altstack_free_record(t); /* not this thread's own */
                free(t);
                t = next;
        }
        reg.head = NULL;
        pthread_mutex_init(&reg.lock, NULL);
        fr__self = NULL;
        if (reg.key_err == 0)
                pthread_setspecific(reg.key, NULL);
}
