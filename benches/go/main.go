// Command grovebench runs the Go twins of grove's benchmark workloads
// (see BENCHMARKS.md). Every workload checks its own result and exits with
// status 1 and a message on stderr if the result is wrong.
//
//	spawn_join       N goroutines (100,000) each increment a shared atomic
//	                 counter; wait with a WaitGroup.                ns/task
//	pingpong0        main and one goroutine bounce a counter over two
//	                 unbuffered channels, R round trips (1,000,000). ns/roundtrip
//	prodcons_cap0    1 producer / 1 consumer, capacity 0, values 1..M
//	                 (M = 1,000,000); consumer sums.                 ns/msg
//	prodcons_cap128  the same over capacity 128.                     ns/msg
//	prodcons_4p4c    4 producers (M/4 distinct values each) / 4 consumers
//	                 over capacity 128; WaitGroup + close.           ns/msg
//	skynet           classic skynet: 10-ary tree of L leaves (1,000,000),
//	                 each node spawns 10 children that send their sums on a
//	                 channel; leaf sends its ordinal.                ms
//	parked_memory    N goroutines (100,000) blocked receiving on one shared
//	                 unbuffered channel; RSS growth (/proc/self/statm) / N,
//	                 each repetition in a fresh child process.       KiB/task
//	mutex            8 goroutines increment one counter under a sync.Mutex,
//	                 T increments in all (8,000,000).                ns/incr
//	mutex_uncontended one goroutine locks and unlocks one sync.Mutex N times
//	                 (10,000,000), incrementing the counter it guards. ns/op
//	rwlock_read      8 goroutines share one sync.RWMutex over a counter, T
//	                 operations in all (4,000,000): rounds of 99 reads
//	                 (RLock, read) and 1 write (Lock, increment).  ns/op
//	waitgroup_fanout N goroutines (100,000) each increment a shared atomic
//	                 counter and call Done on one sync.WaitGroup; the
//	                 spawner Waits (the same shape as spawn_join).  ns/task
//	select2          one goroutine selects over two capacity-128 channels fed
//	                 by two producers (M/2 each), nil-ing closed ones. ns/msg
//	fib_fork         fib(27): every call with n >= 2 spawns a goroutine for
//	                 fib(n-1), computes fib(n-2) itself, then receives the
//	                 child's result on a channel.                    ms
//
// Usage: go run . [-only NAME[,NAME...]] [-reps K] [-scale S] [-procs P] [-list]
// Output: one line per repetition, "RESULT <name> <value> <unit> procs=<P>".
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type workload struct {
	name string
	unit string
	run  func(scale float64) float64 // returns the measured value in unit
}

var workloads = []workload{
	{"spawn_join", "ns/task", spawnJoin},
	{"pingpong0", "ns/roundtrip", pingpong0},
	{"prodcons_cap0", "ns/msg", func(s float64) float64 { return prodcons(s, 0) }},
	{"prodcons_cap128", "ns/msg", func(s float64) float64 { return prodcons(s, 128) }},
	{"prodcons_4p4c", "ns/msg", prodcons4p4c},
	{"skynet", "ms", skynetBench},
	{"parked_memory", "KiB/task", parkedMemoryFresh},
	{"mutex", "ns/incr", mutexBench},
	{"mutex_uncontended", "ns/op", mutexUncontended},
	{"rwlock_read", "ns/op", rwlockRead},
	{"waitgroup_fanout", "ns/task", waitgroupFanout},
	{"select2", "ns/msg", select2},
	{"fib_fork", "ms", fibFork},
}

// fail reports a wrong result and exits with status 1.
func fail(name, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s: WRONG RESULT: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// scaled returns base*scale rounded, at least min.
func scaled(base int, scale float64, min int) int {
	n := int(math.Round(float64(base) * scale))
	if n < min {
		n = min
	}
	return n
}

func perOp(d time.Duration, ops int) float64 { return float64(d.Nanoseconds()) / float64(ops) }
func ms(d time.Duration) float64             { return float64(d.Nanoseconds()) / 1e6 }

func spawnJoin(scale float64) float64 {
	n := scaled(100_000, scale, 1)
	var counter atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			counter.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if got := counter.Load(); got != int64(n) {
		fail("spawn_join", "counter = %d, want %d", got, n)
	}
	return perOp(d, n)
}

func pingpong0(scale float64) float64 {
	r := scaled(1_000_000, scale, 1)
	ping, pong := make(chan int), make(chan int)
	start := time.Now()
	go func() {
		for i := 0; i < r; i++ {
			pong <- <-ping + 1
		}
	}()
	v := 0
	for i := 0; i < r; i++ {
		ping <- v + 1
		v = <-pong
	}
	d := time.Since(start)
	if v != 2*r {
		fail("pingpong0", "counter = %d, want %d", v, 2*r)
	}
	return perOp(d, r)
}

func prodcons(scale float64, capacity int) float64 {
	m := scaled(1_000_000, scale, 1)
	ch := make(chan int, capacity)
	start := time.Now()
	go func() {
		for i := 1; i <= m; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum := 0
	for v := range ch {
		sum += v
	}
	d := time.Since(start)
	if want := m * (m + 1) / 2; sum != want {
		fail(fmt.Sprintf("prodcons_cap%d", capacity), "sum = %d, want %d", sum, want)
	}
	return perOp(d, m)
}

func prodcons4p4c(scale float64) float64 {
	per := scaled(1_000_000, scale, 4) / 4
	m := 4 * per
	ch := make(chan int, 128)
	var producers sync.WaitGroup
	var total atomic.Int64
	var consumers sync.WaitGroup
	start := time.Now()
	producers.Add(4)
	for p := 0; p < 4; p++ {
		go func(first int) { // sends first..first+per-1
			for i := first; i < first+per; i++ {
				ch <- i
			}
			producers.Done()
		}(p*per + 1)
	}
	go func() { producers.Wait(); close(ch) }()
	consumers.Add(4)
	for c := 0; c < 4; c++ {
		go func() {
			sum := 0
			for v := range ch {
				sum += v
			}
			total.Add(int64(sum))
			consumers.Done()
		}()
	}
	consumers.Wait()
	d := time.Since(start)
	if want := int64(m) * int64(m+1) / 2; total.Load() != want {
		fail("prodcons_4p4c", "sum = %d, want %d", total.Load(), want)
	}
	return perOp(d, m)
}

// skynet is the classic benchmark: a node of size > 1 spawns div children
// covering equal sub-ranges and sends the sum of their answers on c.
func skynet(c chan<- int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	for i := 0; i < div; i++ {
		go skynet(rc, num+i*(size/div), size/div, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynetBench(scale float64) float64 {
	// Scale only to the nearest power of ten of leaves, at least 1000.
	exp := int(math.Round(math.Log10(1e6 * scale)))
	if exp < 3 {
		exp = 3
	}
	leaves := int(math.Pow10(exp))
	c := make(chan int)
	start := time.Now()
	go skynet(c, 0, leaves, 10)
	sum := <-c
	d := time.Since(start)
	if want := leaves * (leaves - 1) / 2; sum != want {
		fail("skynet", "sum = %d, want %d", sum, want)
	}
	return ms(d)
}

// rss returns the resident set size of this process in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "parked_memory:", err)
		os.Exit(1)
	}
	f := strings.Fields(string(b))
	if len(f) >= 2 {
		if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			return pages * int64(os.Getpagesize())
		}
	}
	fmt.Fprintln(os.Stderr, "parked_memory: bad /proc/self/statm:", string(b))
	os.Exit(1)
	return 0
}

func parkedMemory(scale float64) float64 {
	n := scaled(100_000, scale, 1)
	// Return freed stacks (e.g. from earlier runs) to the OS so that they
	// are not silently reused and the growth reflects n fresh goroutines.
	runtime.GC()
	debug.FreeOSMemory()
	before := rss()
	ch := make(chan struct{})
	var parked, exited sync.WaitGroup
	var received atomic.Int64
	parked.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			if _, ok := <-ch; !ok {
				received.Add(1)
			}
			exited.Done()
		}()
	}
	parked.Wait()
	for i := 0; i < 10; i++ {
		runtime.Gosched() // let the last goroutines reach the receive
	}
	after := rss()
	close(ch)
	exited.Wait()
	if got := received.Load(); got != int64(n) {
		fail("parked_memory", "%d goroutines woke by close, want %d", got, n)
	}
	return float64(after-before) / 1024 / float64(n)
}

// childEnv marks a child process that runs one parked_memory repetition.
const childEnv = "GROVEBENCH_PARKED_CHILD"

// parkedMemoryFresh runs parkedMemory in a fresh copy of this program: Go
// never frees goroutine descriptors and caches stacks, so a second
// measurement in the same process would under-count.
func parkedMemoryFresh(scale float64) float64 {
	if os.Getenv(childEnv) != "" {
		return parkedMemory(scale)
	}
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.Command(exe, "-only", "parked_memory", "-reps", "1",
			"-scale", fmt.Sprint(scale), "-procs", fmt.Sprint(runtime.GOMAXPROCS(0)))
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.Stderr = os.Stderr
		var out []byte
		if out, err = cmd.Output(); err == nil {
			if f := strings.Fields(string(out)); len(f) >= 3 {
				var v float64
				if v, err = strconv.ParseFloat(f[2], 64); err == nil {
					return v
				}
			}
			err = fmt.Errorf("unexpected child output %q", out)
		}
	}
	fmt.Fprintln(os.Stderr, "parked_memory: child process:", err)
	os.Exit(1)
	return 0
}

func mutexBench(scale float64) float64 {
	per := scaled(8_000_000, scale, 8) / 8
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	start := time.Now()
	wg.Add(8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if counter != 8*per {
		fail("mutex", "counter = %d, want %d", counter, 8*per)
	}
	return perOp(d, 8*per)
}

func mutexUncontended(scale float64) float64 {
	n := scaled(10_000_000, scale, 1)
	var mu sync.Mutex
	counter := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	d := time.Since(start)
	if counter != n {
		fail("mutex_uncontended", "counter = %d, want %d", counter, n)
	}
	return perOp(d, n)
}

func rwlockRead(scale float64) float64 {
	// Whole rounds of 100 operations (99 reads, 1 write) per goroutine, at
	// least one each, as in grove's rwlock_read::operations.
	rounds := scaled(4_000_000, scale, 800) / 800
	total, writes := 800*rounds, 8*rounds
	var mu sync.RWMutex
	var wg sync.WaitGroup
	value := 0
	seen := make([]int, 8)
	start := time.Now()
	wg.Add(8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			max := 0
			for r := 0; r < rounds; r++ {
				for i := 0; i < 99; i++ {
					mu.RLock()
					if value > max {
						max = value
					}
					mu.RUnlock()
				}
				mu.Lock()
				value++
				mu.Unlock()
			}
			seen[g] = max
			wg.Done()
		}(g)
	}
	wg.Wait()
	d := time.Since(start)
	if value != writes {
		fail("rwlock_read", "counter = %d, want %d", value, writes)
	}
	for _, s := range seen {
		if s > value {
			fail("rwlock_read", "a reader saw %d, above the final count %d", s, value)
		}
	}
	return perOp(d, total)
}

func waitgroupFanout(scale float64) float64 {
	n := scaled(100_000, scale, 1)
	var counter atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			counter.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if got := counter.Load(); got != int64(n) {
		fail("waitgroup_fanout", "counter = %d, want %d", got, n)
	}
	return perOp(d, n)
}

func select2(scale float64) float64 {
	per := scaled(1_000_000, scale, 2) / 2
	m := 2 * per
	a, b := make(chan int, 128), make(chan int, 128)
	produce := func(c chan<- int, first int) {
		for i := first; i < first+per; i++ {
			c <- i
		}
		close(c)
	}
	start := time.Now()
	go produce(a, 1)
	go produce(b, per+1)
	sum := 0
	for a != nil || b != nil {
		select {
		case v, ok := <-a:
			if !ok {
				a = nil
				continue
			}
			sum += v
		case v, ok := <-b:
			if !ok {
				b = nil
				continue
			}
			sum += v
		}
	}
	d := time.Since(start)
	if want := m * (m + 1) / 2; sum != want {
		fail("select2", "sum = %d, want %d", sum, want)
	}
	return perOp(d, m)
}

// fib forks a goroutine for fib(n-1), computes fib(n-2) itself and then
// receives the child's result.
func fib(n int) int {
	if n < 2 {
		return n
	}
	c := make(chan int, 1)
	go func() { c <- fib(n - 1) }()
	x := fib(n - 2)
	return x + <-c
}

func fibFork(scale float64) float64 {
	n := 27
	if scale < 1 {
		n -= int(math.Round(math.Log(1/scale) / math.Log(1.618)))
		if n < 0 {
			n = 0
		}
	}
	start := time.Now()
	got := fib(n)
	d := time.Since(start)
	want, next := 0, 1 // fib(27) = 196418
	for i := 0; i < n; i++ {
		want, next = next, want+next
	}
	if got != want {
		fail("fib_fork", "fib(%d) = %d, want %d", n, got, want)
	}
	return ms(d)
}

func main() {
	only := flag.String("only", "", "comma-separated workload names (default: all)")
	reps := flag.Int("reps", 3, "timed repetitions per workload")
	scale := flag.Float64("scale", 1.0, "multiplies the size of every workload")
	procs := flag.Int("procs", runtime.NumCPU(), "GOMAXPROCS")
	list := flag.Bool("list", false, "print the workload names and exit")
	version := flag.Bool("version", false, "print the Go version this was built with and exit")
	flag.Parse()

	if *version {
		fmt.Println(runtime.Version())
		return
	}

	if *list {
		for _, w := range workloads {
			fmt.Println(w.name)
		}
		return
	}
	if *procs < 1 || *reps < 1 || !(*scale > 0) {
		fmt.Fprintln(os.Stderr, "-procs and -reps must be >= 1 and -scale > 0")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)

	selected := workloads
	if *only != "" {
		selected = nil
		for _, name := range strings.Split(*only, ",") {
			found := false
			for _, w := range workloads {
				if w.name == strings.TrimSpace(name) {
					selected = append(selected, w)
					found = true
				}
			}
			if !found {
				fmt.Fprintf(os.Stderr, "unknown workload %q (try -list)\n", name)
				os.Exit(2)
			}
		}
	}

	for _, w := range selected {
		if os.Getenv(childEnv) == "" {
			w.run(*scale / 100) // short untimed warm-up
		}
		for i := 0; i < *reps; i++ {
			fmt.Printf("RESULT %s %.2f %s procs=%d\n", w.name, w.run(*scale), w.unit, *procs)
		}
	}
}
