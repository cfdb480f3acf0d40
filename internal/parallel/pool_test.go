package parallel

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countJob counts how often each index is run and checks that no two Runs
// with the same worker index overlap.
type countJob struct {
	hits    []atomic.Int32
	busy    []atomic.Bool
	workers int
	bad     atomic.Int32
}

func (j *countJob) Run(worker, start, end int) {
	if worker < 0 || worker >= j.workers || start >= end {
		j.bad.Add(1)
		return
	}
	if j.busy[worker].Swap(true) {
		j.bad.Add(1)
	}
	for i := start; i < end; i++ {
		j.hits[i].Add(1)
	}
	j.busy[worker].Store(false)
}

func newCountJob(total, workers int) *countJob {
	return &countJob{hits: make([]atomic.Int32, total), busy: make([]atomic.Bool, workers), workers: workers}
}

func (j *countJob) check(t *testing.T, label string) {
	t.Helper()
	if n := j.bad.Load(); n != 0 {
		t.Fatalf("%s: %d bad Runs (worker index out of range, empty range or overlap)", label, n)
	}
	for i := range j.hits {
		if h := j.hits[i].Load(); h != 1 {
			t.Fatalf("%s: index %d ran %d times", label, i, h)
		}
	}
}

func TestDoCoversEveryIndexOnce(t *testing.T) {
	for _, size := range []int{1, 2, 3, 8} {
		p := New(size)
		if p.Size() != size {
			t.Fatalf("Size %d, want %d", p.Size(), size)
		}
		for _, total := range []int{0, 1, 2, 7, 64, 1000, 4097} {
			for _, grain := range []int{0, 1, 3, 16, 5000} {
				j := newCountJob(total, size)
				p.Do(total, grain, j)
				j.check(t, "size/total/grain")
			}
		}
		p.Close()
	}
}

// Many jobs in a row, with pauses long enough for the workers to park.
func TestDoRepeatedAndParked(t *testing.T) {
	p := New(3)
	defer p.Close()
	for k := range 2000 {
		j := newCountJob(100+k%50, 3)
		p.Do(len(j.hits), 4, j)
		j.check(t, "repeated")
		if k%500 == 0 {
			time.Sleep(3 * spinTime) // let the workers park
		}
	}
}

// Jobs submitted from several goroutines run one at a time, each complete.
func TestDoConcurrentCallers(t *testing.T) {
	p := New(4)
	defer p.Close()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 300 {
				j := newCountJob(50+g+k%7, 4)
				p.Do(len(j.hits), 2, j)
				if j.bad.Load() != 0 {
					t.Error("bad run")
					return
				}
				for i := range j.hits {
					if j.hits[i].Load() != 1 {
						t.Errorf("index %d ran %d times", i, j.hits[i].Load())
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

type sumJob struct {
	x    []float64
	part []float64 // per worker
}

func (j *sumJob) Run(w, start, end int) {
	for _, v := range j.x[start:end] {
		j.part[w] += v
	}
}

func TestDoAllocatesNothing(t *testing.T) {
	p := New(2)
	defer p.Close()
	j := &sumJob{x: make([]float64, 10000), part: make([]float64, 2)}
	allocs := testing.AllocsPerRun(200, func() { p.Do(len(j.x), 64, j) })
	if allocs != 0 {
		t.Errorf("%v allocations per Do", allocs)
	}
}

func TestCloseThenDo(t *testing.T) {
	p := New(3)
	p.Close()
	p.Close()
	j := newCountJob(100, 3)
	p.Do(100, 1, j)
	j.check(t, "after Close")
}

func TestDefault(t *testing.T) {
	if Default() != Default() || Default().Size() < 1 {
		t.Fatal("Default is not one pool")
	}
}

func BenchmarkDo(b *testing.B) {
	p := Default()
	j := &sumJob{x: make([]float64, 4096), part: make([]float64, p.Size())}
	for b.Loop() {
		p.Do(len(j.x), 256, j)
	}
}

func BenchmarkDoSerial(b *testing.B) {
	p := New(1)
	j := &sumJob{x: make([]float64, 4096), part: make([]float64, p.Size())}
	for b.Loop() {
		p.Do(len(j.x), 256, j)
	}
}
