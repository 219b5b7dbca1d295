package cmd

// defaultProcs is how many threads `rosti serve` runs Go code on
// (GOMAXPROCS) on a machine of cpus CPUs: half of them, at least one.
// rosti shares the machine with the apps it runs, and with more Ps than
// spare cores the proxy spends its time handing goroutines between threads
// instead of moving bytes. Measured on the 2-core benchmark machine, wrk
// through the proxy to an app container: with GOMAXPROCS=2, 15-15.6k req/s
// at 50 µs of CPU per request, 40 % of the profile in context switches and
// futex wake-ups; with GOMAXPROCS=1, 18-20k req/s at 33-40 µs (nginx:
// 20.8k at 29 µs).
func defaultProcs(cpus int) int { return max(1, cpus/2) }
