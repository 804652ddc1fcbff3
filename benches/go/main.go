// Command grovebench runs the Go twins of grove's benchmark workloads
// (see BENCHMARKS.md at the root of the repository). Every workload checks
// its own result and exits with status 1 and a message on stderr if the
// result is wrong. Sizes come from the command line (the comparison
// program passes those of its one table, benches/src/sizes.rs): SIZE is
//
//	spawn_join       N goroutines each increment a shared atomic counter;
//	                 wait with a WaitGroup.                         ns/task
//	pingpong0        main and one goroutine bounce a counter over two
//	                 unbuffered channels, N round trips.            ns/roundtrip
//	prodcons_cap0    1 producer / 1 consumer, capacity 0, values 1..N;
//	                 the consumer (main) sums.                      ns/msg
//	prodcons_cap128  the same over capacity 128.                     ns/msg
//	prodcons_4p4c    4 producers (N/4 distinct values each) / 4 consumers
//	                 over capacity 128; WaitGroup + close.           ns/msg
//	skynet           classic skynet: 10-ary tree of N leaves (a power of
//	                 ten), each node spawns 10 children that send their
//	                 sums on a channel; leaf sends its ordinal.      ms
//	parked_memory    N goroutines blocked receiving on one shared
//	                 unbuffered channel; RSS growth (/proc/self/statm) / N,
//	                 each repetition in a fresh child process.       KiB/task
//	mutex            8 goroutines increment one counter under a sync.Mutex,
//	                 N increments in all.                            ns/incr
//	mutex_uncontended one goroutine locks and unlocks one sync.Mutex N times,
//	                 incrementing the counter it guards.             ns/op
//	rwlock_read      8 goroutines share one sync.RWMutex over a counter, N
//	                 operations in all (a multiple of 800): rounds of 99
//	                 reads (RLock, read) and 1 write (Lock, increment). ns/op
//	waitgroup_fanout N goroutines each increment a shared atomic counter
//	                 and call Done on one sync.WaitGroup; the spawner Waits
//	                 (the same shape as spawn_join).                ns/task
//	select2          one goroutine (main) selects over two capacity-128
//	                 channels fed by two producers (N/2 each), nil-ing
//	                 closed ones.                                   ns/msg
//	fib_fork         fib(N): every call with n >= 2 spawns a goroutine for
//	                 fib(n-1), computes fib(n-2) itself, then receives the
//	                 child's result on a channel.                    ms
//	file_read        64 goroutines each open /dev/zero (os.Open) and read
//	                 4 KiB from it N/64 times (f.Read; N rounded down to
//	                 a multiple of 64, at least 64), checking that every
//	                 read returns 4096 bytes and zeroes its buffer. The
//	                 read runs on the goroutine's own M, which hands its
//	                 P off only if the call blocks long.             ns/read
//
// The natural programs: main spawns every communicating goroutine, then
// waits for them (the shape a Go program takes; grove runs it placed as
// its scheduler likes, and split across workers):
//
//	pingpong0_natural, prodcons_cap0_natural, prodcons_cap128_natural,
//	prodcons_4p4c_natural, select2_natural
//
// The echo workload's server (the comparison program drives it with its
// load generator, as it drives the Rust servers):
//
//	-echo ADDR       a TCP echo server on ADDR (127.0.0.1:0: a port the
//	                 kernel picks), a goroutine per connection reading up
//	                 to 4 KiB and writing it back; prints "LISTEN <addr>"
//	                 once listening, runs a ticker goroutine (sleeps 10 ms
//	                 in a loop, recording how late it wakes), and serves
//	                 until its standard input closes; then prints
//	                 "TICKER <ticks> <worst lateness, ns>" and exits.
//
// Usage: grovebench [-reps K] [-procs P] NAME=SIZE[:WARM] ...
// (WARM: the size of an untimed warm-up run first; none without it),
// grovebench [-procs P] -echo ADDR, grovebench -list, grovebench -version.
// Output: one line per repetition, "RESULT <name> <value> <unit> procs=<P>".
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"net"
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
	run  func(n int) float64 // runs at size n; returns the measured value in unit
}

var workloads = []workload{
	{"spawn_join", "ns/task", spawnJoin},
	{"pingpong0", "ns/roundtrip", pingpong0},
	{"prodcons_cap0", "ns/msg", func(n int) float64 { return prodcons(n, 0) }},
	{"prodcons_cap128", "ns/msg", func(n int) float64 { return prodcons(n, 128) }},
	{"prodcons_4p4c", "ns/msg", func(n int) float64 { return prodconsSpawned("prodcons_4p4c", n, 4, 128) }},
	{"skynet", "ms", skynetBench},
	{"parked_memory", "KiB/task", parkedMemoryFresh},
	{"mutex", "ns/incr", mutexBench},
	{"mutex_uncontended", "ns/op", mutexUncontended},
	{"rwlock_read", "ns/op", rwlockRead},
	{"waitgroup_fanout", "ns/task", waitgroupFanout},
	{"select2", "ns/msg", select2},
	{"fib_fork", "ms", fibFork},
	{"file_read", "ns/read", fileRead},
	{"pingpong0_natural", "ns/roundtrip", pingpong0Natural},
	{"prodcons_cap0_natural", "ns/msg", func(n int) float64 { return prodconsSpawned("prodcons_cap0_natural", n, 1, 0) }},
	{"prodcons_cap128_natural", "ns/msg", func(n int) float64 { return prodconsSpawned("prodcons_cap128_natural", n, 1, 128) }},
	{"prodcons_4p4c_natural", "ns/msg", func(n int) float64 { return prodconsSpawned("prodcons_4p4c_natural", n, 4, 128) }},
	{"select2_natural", "ns/msg", select2Natural},
}

// fail reports a wrong result and exits with status 1.
func fail(name, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s: WRONG RESULT: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// atLeast returns n, or min if n is smaller.
func atLeast(n, min int) int {
	if n < min {
		return min
	}
	return n
}

func perOp(d time.Duration, ops int) float64 { return float64(d.Nanoseconds()) / float64(ops) }
func ms(d time.Duration) float64             { return float64(d.Nanoseconds()) / 1e6 }

func spawnJoin(n int) float64 {
	n = atLeast(n, 1)
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

// echo answers v+1 on pong to every v it receives on ping, r times; then
// marks done, if given.
func echo(ping <-chan int, pong chan<- int, r int, done *sync.WaitGroup) {
	for i := 0; i < r; i++ {
		pong <- <-ping + 1
	}
	if done != nil {
		done.Done()
	}
}

func pingpong0(r int) float64 {
	r = atLeast(r, 1)
	ping, pong := make(chan int), make(chan int)
	start := time.Now()
	go echo(ping, pong, r, nil)
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

func prodcons(m int, capacity int) float64 {
	m = atLeast(m, 1)
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

func skynetBench(leaves int) float64 {
	if leaves < 10 || math.Pow10(int(math.Round(math.Log10(float64(leaves))))) != float64(leaves) {
		fmt.Fprintf(os.Stderr, "skynet: leaves must be a power of ten, at least 10; got %d\n", leaves)
		os.Exit(2)
	}
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

func parkedMemory(n int) float64 {
	n = atLeast(n, 1)
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
func parkedMemoryFresh(n int) float64 {
	if os.Getenv(childEnv) != "" {
		return parkedMemory(n)
	}
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.Command(exe, "-reps", "1", "-procs", fmt.Sprint(runtime.GOMAXPROCS(0)),
			fmt.Sprintf("parked_memory=%d", n))
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

func mutexBench(n int) float64 {
	per := atLeast(n, 8) / 8
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

func mutexUncontended(n int) float64 {
	n = atLeast(n, 1)
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

func rwlockRead(n int) float64 {
	// Whole rounds of 100 operations (99 reads, 1 write) per goroutine, at
	// least one each, as in grove's rwlock_read::operations.
	rounds := atLeast(n, 800) / 800
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

func waitgroupFanout(n int) float64 {
	n = atLeast(n, 1)
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

// selectSum sums what comes on a and b until both are closed, nil-ing a
// closed one (a nil channel's case is never ready).
func selectSum(a, b <-chan int) int {
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
	return sum
}

func select2(n int) float64 { return select2Program("select2", n, false) }

func select2Natural(n int) float64 { return select2Program("select2_natural", n, true) }

// select2Program: two producers (n/2 values each) feed two capacity-128
// channels, one goroutine selects over both; main is that goroutine, or
// (natural) spawns it too and waits.
func select2Program(name string, n int, natural bool) float64 {
	per := atLeast(n, 2) / 2
	m := 2 * per
	a, b := make(chan int, 128), make(chan int, 128)
	produce := func(c chan<- int, first int) {
		for i := first; i < first+per; i++ {
			c <- i
		}
		close(c)
	}
	sum := 0
	start := time.Now()
	go produce(a, 1)
	go produce(b, per+1)
	if natural {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			sum = selectSum(a, b)
			wg.Done()
		}()
		wg.Wait()
	} else {
		sum = selectSum(a, b)
	}
	d := time.Since(start)
	if want := m * (m + 1) / 2; sum != want {
		fail(name, "sum = %d, want %d", sum, want)
	}
	return perOp(d, m)
}

// pingpong0Natural is pingpong0 as a Go program would be written: main
// spawns the driver and the echo, then waits for both.
func pingpong0Natural(r int) float64 {
	r = atLeast(r, 1)
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	v := 0
	start := time.Now()
	wg.Add(2)
	go echo(ping, pong, r, &wg)
	go func() {
		for i := 0; i < r; i++ {
			ping <- v + 1
			v = <-pong
		}
		wg.Done()
	}()
	wg.Wait()
	d := time.Since(start)
	if v != 2*r {
		fail("pingpong0_natural", "counter = %d, want %d", v, 2*r)
	}
	return perOp(d, r)
}

// prodconsSpawned: main spawns p producers (n/p distinct values each) and
// p consumers over one channel of the given capacity, then waits; the
// last producer to finish closes the channel. prodcons_4p4c is this
// program with p = 4 (main consumes nothing), and so is its natural twin.
func prodconsSpawned(name string, n, p, capacity int) float64 {
	per := atLeast(n, p) / p
	m := p * per
	ch := make(chan int, capacity)
	var producers, consumers sync.WaitGroup
	var total atomic.Int64
	start := time.Now()
	producers.Add(p)
	for i := 0; i < p; i++ {
		go func(first int) {
			for v := first; v < first+per; v++ {
				ch <- v
			}
			producers.Done()
		}(i*per + 1)
	}
	go func() { producers.Wait(); close(ch) }()
	consumers.Add(p)
	for i := 0; i < p; i++ {
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
		fail(name, "sum = %d, want %d", total.Load(), want)
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

func fibFork(n int) float64 {
	if n < 0 || n > 40 {
		fmt.Fprintf(os.Stderr, "fib_fork: n must be 0 to 40; got %d\n", n)
		os.Exit(2)
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

// fileReadTasks and fileReadBlock are file_read's goroutines and the bytes
// each read asks for (grove_workloads::file_read::{TASKS, BLOCK}).
const (
	fileReadTasks = 64
	fileReadBlock = 4096
)

// fileReadSampled are the bytes of the buffer set non-zero before each
// read and summed after it: the first, the middle and the last.
var fileReadSampled = [...]int{0, fileReadBlock / 2, fileReadBlock - 1}

func fileRead(n int) float64 {
	each := atLeast(n, fileReadTasks) / fileReadTasks
	total := each * fileReadTasks
	var full, sampled atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(fileReadTasks)
	for g := 0; g < fileReadTasks; g++ {
		go func() {
			defer wg.Done()
			f, err := os.Open("/dev/zero")
			if err != nil {
				fail("file_read", "cannot open /dev/zero: %v", err)
			}
			defer f.Close()
			buf := make([]byte, fileReadBlock)
			var reads, sum int64
			for i := 0; i < each; i++ {
				for _, at := range fileReadSampled {
					buf[at] = 0xa5
				}
				got, err := f.Read(buf)
				if err != nil {
					fail("file_read", "cannot read /dev/zero: %v", err)
				}
				if got == fileReadBlock {
					reads++
				}
				for _, at := range fileReadSampled {
					sum += int64(buf[at])
				}
			}
			full.Add(reads)
			sampled.Add(sum)
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if got := full.Load(); got != int64(total) {
		fail("file_read", "full reads = %d, want %d", got, total)
	}
	if got := sampled.Load(); got != 0 {
		fail("file_read", "sampled bytes summed to %d, want 0", got)
	}
	return perOp(d, total)
}

// echoTick is the echo server's ticker period.
const echoTick = 10 * time.Millisecond

// echoServer is the echo workload's server (see the head of this file).
func echoServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(2)
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	var ticks, worst atomic.Int64
	go func() {
		for {
			t := time.Now()
			time.Sleep(echoTick)
			late := int64(time.Since(t) - echoTick)
			ticks.Add(1)
			for {
				w := worst.Load()
				if late <= w || worst.CompareAndSwap(w, late) {
					break
				}
			}
		}
	}()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		fmt.Printf("TICKER %d %d\n", ticks.Load(), worst.Load())
		os.Exit(0)
	}()
	said := map[string]bool{}
	for {
		c, err := ln.Accept()
		if err != nil {
			if !said[err.Error()] {
				said[err.Error()] = true
				fmt.Fprintf(os.Stderr, "note: accept failed (%v); retrying\n", err)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		go echoConn(c)
	}
}

// echoConn answers one connection: reads up to 4 KiB, writes it back, until
// the peer closes or resets. (TCP_NODELAY is Go's default.)
func echoConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// job is one workload to run, at a size, with an optional warm-up size.
type job struct {
	w    workload
	size int
	warm int
}

// parseJob reads NAME=SIZE[:WARM].
func parseJob(arg string) (job, error) {
	name, sizes, ok := strings.Cut(arg, "=")
	if !ok {
		return job{}, fmt.Errorf("%q is not NAME=SIZE[:WARM]", arg)
	}
	var j job
	found := false
	for _, w := range workloads {
		if w.name == name {
			j.w, found = w, true
		}
	}
	if !found {
		return job{}, fmt.Errorf("unknown workload %q (try -list)", name)
	}
	size, warm, hasWarm := strings.Cut(sizes, ":")
	var err error
	if j.size, err = strconv.Atoi(size); err != nil || j.size < 0 {
		return job{}, fmt.Errorf("%s: size %q is not a whole number", name, size)
	}
	if hasWarm {
		if j.warm, err = strconv.Atoi(warm); err != nil || j.warm < 0 {
			return job{}, fmt.Errorf("%s: warm-up size %q is not a whole number", name, warm)
		}
	}
	return j, nil
}

func main() {
	reps := flag.Int("reps", 3, "timed repetitions per workload")
	procs := flag.Int("procs", runtime.NumCPU(), "GOMAXPROCS")
	list := flag.Bool("list", false, "print the workload names and exit")
	version := flag.Bool("version", false, "print the Go version this was built with and exit")
	echo := flag.String("echo", "", "serve TCP echo on `ADDR` until standard input closes (the echo workload's server)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: grovebench [-reps K] [-procs P] NAME=SIZE[:WARM] ...")
		fmt.Fprintln(os.Stderr, "sizes: BENCHMARKS.md's table; `cargo run --release -p grove-benches -- --go-command` prints a full command")
		flag.PrintDefaults()
	}
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
	if *procs < 1 || *reps < 1 {
		fmt.Fprintln(os.Stderr, "-procs and -reps must be >= 1")
		os.Exit(2)
	}
	if *echo != "" {
		runtime.GOMAXPROCS(*procs)
		echoServer(*echo)
		return
	}
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var jobs []job
	for _, arg := range flag.Args() {
		j, err := parseJob(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		jobs = append(jobs, j)
	}
	runtime.GOMAXPROCS(*procs)

	for _, j := range jobs {
		if j.warm > 0 && os.Getenv(childEnv) == "" {
			j.w.run(j.warm) // untimed warm-up
		}
		for i := 0; i < *reps; i++ {
			fmt.Printf("RESULT %s %.2f %s procs=%d\n", j.w.name, j.w.run(j.size), j.w.unit, *procs)
		}
	}
}
