package chat

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ardanlabs/jinja"
)

// budget is one render's account: the sandbox's callbacks charge it.
type budget struct {
	ctx       context.Context
	lim       Limits
	inputLeft int64

	iters   int64
	out     int64
	depth   int
	err     error
	stopped atomic.Bool
}

func (b *budget) charge(n int) error {
	b.inputLeft -= int64(n)
	if b.inputLeft < 0 {
		return fmt.Errorf("chat template: the conversation exceeds %d bytes", b.lim.MaxInputBytes)
	}
	return nil
}

func (b *budget) stop() { b.stopped.Store(true) }

// fail records the first error; the engine passes a callback's error up
// and stops.
func (b *budget) fail(format string, args ...any) (jinja.Value, error) {
	if b.err == nil {
		b.err = fmt.Errorf("%w: "+format, append([]any{ErrUnsafeTemplate}, args...)...)
	}
	return jinja.Undefined(), b.err
}

func (b *budget) check() (jinja.Value, error) {
	if b.stopped.Load() {
		return b.fail("stopped")
	}
	if err := b.ctx.Err(); err != nil {
		if b.err == nil {
			b.err = err
		}
		return jinja.Undefined(), err
	}
	if b.out > int64(b.lim.MaxOutputBytes) {
		return b.fail("the output exceeds %d bytes", b.lim.MaxOutputBytes)
	}
	return jinja.NewString(""), nil
}

func (b *budget) hooks() map[string]func([]jinja.Value, map[string]jinja.Value) (jinja.Value, error) {
	return map[string]func([]jinja.Value, map[string]jinja.Value) (jinja.Value, error){
		hookPrefix + "_tick": func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			b.iters++
			if b.iters > b.lim.MaxIterations {
				return b.fail("more than %d loop iterations", b.lim.MaxIterations)
			}
			if len(args) == 1 && args[0].IsInt() {
				b.out += args[0].AsInt()
			}
			return b.check()
		},
		hookPrefix + "_enter": func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			b.depth++
			if b.depth > b.lim.MaxDepth {
				return b.fail("macros nested deeper than %d", b.lim.MaxDepth)
			}
			b.iters++
			if b.iters > b.lim.MaxIterations {
				return b.fail("more than %d loop iterations and macro calls", b.lim.MaxIterations)
			}
			if len(args) == 1 && args[0].IsInt() {
				b.out += args[0].AsInt()
			}
			return b.check()
		},
		hookPrefix + "_leave": func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			b.depth--
			return jinja.NewString(""), nil
		},
		hookPrefix + "_out": func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			if len(args) != 1 {
				return b.fail("an output expression must be one value")
			}
			b.out += b.size(args[0], 0, int64(b.lim.MaxOutputBytes)-b.out+1)
			if _, err := b.check(); err != nil {
				return jinja.Undefined(), err
			}
			return args[0], nil
		},
		hookPrefix + "_cap": func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			if len(args) == 2 && args[1].IsDict() {
				if contains(args[0], args[1].AsDict(), 0) {
					return b.fail("a namespace cannot be stored into itself")
				}
				args = args[:1]
			}
			if len(args) != 1 {
				return b.fail("an assigned value must be one value")
			}
			if n := b.size(args[0], 0, int64(b.lim.MaxValueBytes)+1); n > int64(b.lim.MaxValueBytes) {
				return b.fail("an assigned value exceeds %d bytes", b.lim.MaxValueBytes)
			}
			if _, err := b.check(); err != nil {
				return jinja.Undefined(), err
			}
			return args[0], nil
		},
		"range": b.rangeFn,
	}
}

// size estimates the printed size of v, stopping once it passes limit.
func (b *budget) size(v jinja.Value, depth int, limit int64) int64 {
	if depth > 2*maxValueDepth {
		return limit
	}
	switch {
	case v.IsString():
		return int64(len(v.AsString()))
	case v.IsList():
		var n int64 = 2
		for _, e := range v.AsList().Items {
			n += 2 + b.size(e, depth+1, limit-n)
			if n >= limit {
				return n
			}
		}
		return n
	case v.IsDict():
		var n int64 = 2
		d := v.AsDict()
		for _, k := range d.Keys {
			e, _ := d.Get(k)
			n += int64(len(k)) + 6 + b.size(e, depth+1, limit-n)
			if n >= limit {
				return n
			}
		}
		return n
	}
	return 8
}

// contains reports whether v holds the dict d (or is nested too deeply to
// tell, which counts as yes).
func contains(v jinja.Value, d *jinja.Dict, depth int) bool {
	if depth > 2*maxValueDepth {
		return true
	}
	switch {
	case v.IsDict():
		vd := v.AsDict()
		if vd == d {
			return true
		}
		for _, k := range vd.Keys {
			e, _ := vd.Get(k)
			if contains(e, d, depth+1) {
				return true
			}
		}
	case v.IsList():
		for _, e := range v.AsList().Items {
			if contains(e, d, depth+1) {
				return true
			}
		}
	}
	return false
}

// maxRange bounds one range() call.
const maxRange = 1 << 16

// rangeFn is Python's range, bounded and charged to the iteration budget.
func (b *budget) rangeFn(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	var start, stop, step int64 = 0, 0, 1
	num := func(v jinja.Value) (int64, bool) {
		switch {
		case v.IsInt():
			return v.AsInt(), true
		case v.IsFloat():
			return int64(v.AsFloat()), true
		}
		return 0, false
	}
	var ok [3]bool
	switch len(args) {
	case 1:
		stop, ok[0] = num(args[0])
		ok[1], ok[2] = true, true
	case 2:
		start, ok[0] = num(args[0])
		stop, ok[1] = num(args[1])
		ok[2] = true
	case 3:
		start, ok[0] = num(args[0])
		stop, ok[1] = num(args[1])
		step, ok[2] = num(args[2])
	default:
		return b.fail("range takes 1 to 3 arguments")
	}
	if !ok[0] || !ok[1] || !ok[2] {
		return b.fail("range takes integers")
	}
	if step == 0 {
		return b.fail("range step must not be zero")
	}
	var n int64
	switch {
	case step > 0 && stop > start:
		n = (stop - start + step - 1) / step
	case step < 0 && stop < start:
		n = (start - stop - step - 1) / -step
	}
	if n < 0 || n > maxRange {
		return b.fail("range of more than %d numbers", maxRange)
	}
	b.iters += n / 16
	if b.iters > b.lim.MaxIterations {
		return b.fail("more than %d loop iterations", b.lim.MaxIterations)
	}
	items := make([]jinja.Value, n)
	for i := range items {
		items[i] = jinja.NewInt(start + int64(i)*step)
	}
	return jinja.NewList(items), nil
}
