/* Thread records: registration on first use, the registry the advancer walks,
 * and exit through a pthread key destructor.
 *
 * A record is owned by its thread while the thread lives and is never freed
 * under it: at exit the thread writes THREAD_EXIT and forgets the record, and
 * the advancer frees it once the generation holding the exit is complete. */
#include <errno.h>
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
        free(t);
}

static void make_key(void) { reg.key_err = pthread_key_create(&reg.key, on_thread_exit); }

static struct fr_thread *register_self(void) {
        if (self_gone || !atomic_load(&fr__running))
                return NULL;
        pthread_once(&reg.key_once, make_key);
        if (reg.key_err)
                return NULL;
        struct fr_thread *t;
        if (posix_memalign((void **)&t, FR_CACHELINE, sizeof *t))
                return NULL;
        memset(t, 0, sizeof *t);
        t->tid = gettid();
        if (pthread_setspecific(reg.key, t)) {
                free(t);
                return NULL;
        }
        char name[17] = {0};
        prctl(PR_GET_NAME, name);
        fr__threads_lock();
        t->next = reg.head;
        reg.head = t;
        fr__threads_unlock();
        fr__self = t;
        fr__write_thread_start(t, name);
        return t;
}

struct fr_thread *fr__thread_register(void) { return register_self(); }

void fr__threads_reap(uint64_t completed_gen) {
        for (struct fr_thread **pp = &reg.head; *pp;) {
                struct fr_thread *t = *pp;
                uint64_t eg = atomic_load_explicit(&t->exit_gen, memory_order_acquire);
                if (eg && eg <= completed_gen) {
                        *pp = t->next;
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
                t->lost_events = t->lost_regions = 0;
                t->shadow_alive = false;
                t->shadow_depth = 0;
                t->shadow_name = 0;
        }
        fr__threads_unlock();
}

void fr__thread_forget_self(void) {
        /* After fork, in the child: the records of the parent's threads are
         * garbage (their threads do not exist here). */
        struct fr_thread *t = reg.head;
        while (t) {
                struct fr_thread *next = t->next;
                free(t);
                t = next;
        }
        reg.head = NULL;
        pthread_mutex_init(&reg.lock, NULL);
        fr__self = NULL;
        if (reg.key_err == 0)
                pthread_setspecific(reg.key, NULL);
}
