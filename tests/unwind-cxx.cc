// A C++ program built -O2 with no frame-pointer flag (GCC's default omits
// them), run under LD_PRELOAD=libflightrec.so by test-unwind-cxx.sh: the main
// thread spends its time in std::sort with a comparator function and in
// std::map lookups; a std::thread (started through libstdc++.so's
// execute_native_thread_routine) does map lookups too. At the end it asks
// the agent for a snapshot (fr_snapshot through dlsym). Usage: unwind-cxx SECONDS
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

// The comparator: a leaf function of its own (noinline), the sort's hot spot.
__attribute__((noinline)) bool by_digits(const std::string &a, const std::string &b) {
        size_t n = a.size() < b.size() ? a.size() : b.size();
        for (size_t i = 0; i < n; i++)
                if (a[n - 1 - i] != b[n - 1 - i])
                        return a[n - 1 - i] < b[n - 1 - i];
        return a.size() < b.size();
}

__attribute__((noinline)) uint64_t sort_round(std::vector<std::string> &v, uint64_t seed) {
        for (auto &s : v) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                s = std::to_string(seed >> 20);
        }
        std::sort(v.begin(), v.end(), by_digits);
        return v.front().size();
}

__attribute__((noinline)) uint64_t map_round(const std::map<uint64_t, uint64_t> &m, uint64_t seed) {
        uint64_t hits = 0;
        for (int i = 0; i < 20000; i++) {
                seed = seed * 6364136223846793005ull + 1;
                auto it = m.find(seed % 400000);
                if (it != m.end())
                        hits += it->second;
        }
        return hits;
}

int main(int argc, char **argv) {
        double seconds = argc > 1 ? atof(argv[1]) : 3;
        std::map<uint64_t, uint64_t> m;
        for (uint64_t i = 0; i < 400000; i += 2)
                m[i] = i ^ 0x5555;
        std::vector<std::string> v(20000);
        std::atomic<bool> stop{false};
        volatile uint64_t sink = 0;
        std::thread worker([&] {
                uint64_t s = 7;
                while (!stop.load())
                        s += map_round(m, s);
                sink = sink + s;
        });
        auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        uint64_t s = 1;
        while (std::chrono::steady_clock::now() < end) {
                s += sort_round(v, s);
                s += map_round(m, s);
        }
        stop = true;
        worker.join();
        sink = sink + s;
        auto snapshot = (int (*)(const char *))dlsym(RTLD_DEFAULT, "fr_snapshot");
        int r = snapshot ? snapshot("unwind-cxx") : 0;
        std::printf("done %d\n", r);
        return r == 0 ? 0 : 1;
}
