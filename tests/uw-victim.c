/* A small shared object for test-unwind: copies of it get a hand-damaged
 * .eh_frame, and the table builder must refuse them. */
int uw_victim(int x);
__attribute__((noinline)) static int helper(int x) {
        volatile int v[8] = {x};
        return v[0] * 3 + 1;
}
int uw_victim(int x) {
        return helper(x) + helper(x + 1);
}
