// Package parallel runs data-parallel loops on a persistent pool of worker
// goroutines.
//
// A Pool starts its goroutines once. Do splits a job's index range into
// chunks that the calling goroutine and the workers claim through one atomic
// counter; Do returns when every chunk is done. The caller works too, and it
// never waits for a worker that has not started: if the workers are slow to
// wake (a busy machine), the caller simply claims all the chunks itself.
// Between jobs the workers spin for a short while (the next matmul of a
// forward pass usually follows within microseconds) and then park on a
// channel. Nothing is allocated per call: a job is an interface value that
// callers keep in preallocated structs.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Job is a data-parallel loop body: Run processes the indices [start, end).
// worker identifies the goroutine (0 is the caller of Do, 1..Size()-1 the
// pool's workers), so a job can keep per-worker scratch space indexed by it;
// two Runs with the same worker index never overlap in time.
type Job interface {
	Run(worker, start, end int)
}

// spinTime is how long an idle worker polls for a new job before it parks:
// longer than the gap between two ops of a forward pass (the serial work
// between two products, such as a norm or a sampling step), so that the
// workers stay awake through a pass, whose ops follow each other within
// microseconds, and waking a parked worker (some microseconds) is paid only
// once per pass.
const spinTime = 200 * time.Microsecond

// yieldEvery is how many polls of a spinning goroutine pass between two
// runtime.Gosched calls (which let another goroutine waiting for a P run,
// at the cost of a trip through the scheduler): some microseconds.
const yieldEvery = 2048

// Pool is a fixed set of worker goroutines. Its methods are safe for
// concurrent use; jobs from different goroutines run one after another.
type Pool struct {
	mu      sync.Mutex // one job at a time
	workers []*worker  // background goroutines; the caller is worker 0

	// seq is odd while a job is open to workers and even otherwise. The job
	// fields below are written only while seq is even and no worker is
	// inside; a worker enters by incrementing inside and then checking that
	// seq has not moved, so a worker that wakes late never touches a job
	// that is finished or not yet set up.
	//
	// The fields that the caller and the workers write while a job runs each
	// sit on a cache line of their own, away from seq (which idle workers
	// poll), so that claiming a chunk does not steal the line a spinning
	// worker is reading, nor the reverse.
	_      pad
	seq    atomic.Uint64
	job    Job
	total  int
	grain  int
	closed atomic.Bool
	_      pad
	inside atomic.Int32
	_      pad
	next   atomic.Int64 // start of the next unclaimed chunk
	_      pad
	done   atomic.Int64 // indices completed
	_      pad
}

// pad keeps the fields around it on different cache lines (128 bytes: the
// adjacent-line prefetcher pairs 64-byte lines).
type pad [128]byte

type worker struct {
	id     int
	parked atomic.Bool
	wake   chan struct{} // capacity 1
}

// New starts a pool of n goroutines in total, counting the caller of Do: n-1
// background workers. n < 1 means runtime.GOMAXPROCS(0).
func New(n int) *Pool {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{}
	for i := 1; i < n; i++ {
		w := &worker{id: i, wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(w)
	}
	return p
}

var (
	defaultOnce sync.Once
	defaultPool *Pool
)

// Default is the process-wide pool, with runtime.GOMAXPROCS(0) goroutines as
// of its first use.
func Default() *Pool {
	defaultOnce.Do(func() { defaultPool = New(0) })
	return defaultPool
}

// Size is the number of goroutines that can run a job, the caller included.
func (p *Pool) Size() int { return len(p.workers) + 1 }

// Do runs job over [0, total) in chunks of grain indices (the last one may be
// shorter) and returns when all are done. A job of one chunk, or a pool of
// one goroutine, runs on the caller alone without waking anyone. Do must not
// be called from inside a Job.
func (p *Pool) Do(total, grain int, job Job) {
	if total <= 0 {
		return
	}
	grain = max(grain, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.workers) == 0 || total <= grain || p.closed.Load() {
		job.Run(0, 0, total)
		return
	}
	p.job, p.total, p.grain = job, total, grain
	p.next.Store(0)
	p.done.Store(0)
	p.seq.Add(1) // odd: open
	for _, w := range p.workers {
		if w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	p.work(0)
	// Wait for the chunks that workers claimed, then close the job and let
	// the workers inside it leave.
	for spin := 1; p.done.Load() != int64(total); spin++ {
		if spin%yieldEvery == 0 {
			runtime.Gosched()
		}
	}
	p.seq.Add(1) // even: closed
	for spin := 1; p.inside.Load() != 0; spin++ {
		if spin%yieldEvery == 0 {
			runtime.Gosched()
		}
	}
	p.job = nil
}

// work claims and runs chunks of the open job until none are left.
func (p *Pool) work(id int) {
	job, total, grain := p.job, p.total, p.grain
	did := 0
	for {
		start := int(p.next.Add(int64(grain))) - grain
		if start >= total {
			break
		}
		end := min(start+grain, total)
		job.Run(id, start, end)
		did += end - start
	}
	if did > 0 {
		p.done.Add(int64(did)) // once per goroutine, not per chunk
	}
}

func (p *Pool) loop(w *worker) {
	var seen uint64
	var idleSince time.Time // when the worker last finished a job
	for spin := 1; ; spin++ {
		if s := p.seq.Load(); s&1 == 1 && s != seen {
			seen = s
			p.inside.Add(1)
			if p.seq.Load() == s {
				p.work(w.id)
			}
			p.inside.Add(-1)
			spin = 0
			continue
		}
		if spin%256 != 0 {
			continue
		}
		if p.closed.Load() {
			return
		}
		if spin == 256 {
			idleSince = time.Now()
			continue
		}
		if spin%yieldEvery == 0 {
			runtime.Gosched()
		}
		if time.Since(idleSince) < spinTime {
			continue
		}
		w.parked.Store(true)
		if s := p.seq.Load(); (s&1 == 1 && s != seen) || p.closed.Load() {
			// A job was published while we were parking. If its publisher
			// already cleared the flag, it has sent (or will send) a token,
			// which must be consumed so the channel stays empty.
			if !w.parked.CompareAndSwap(true, false) {
				<-w.wake
			}
		} else {
			<-w.wake
		}
		spin = 0
	}
}

// Close stops the background workers once they are idle. Later calls to Do
// run on the caller alone.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	for _, w := range p.workers {
		if w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
}
