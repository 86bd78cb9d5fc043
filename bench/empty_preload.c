/* An empty shared library: what preloading any library costs a process
 * (bench/run-hostwide.sh compares the agent with it). */
int fr_bench_empty_preload;
