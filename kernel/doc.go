// Package kernel holds the numeric loops of the forward pass: matrix-vector
// and matrix-matrix products over weights in any ggml block format, dot
// products, norms, activations, softmax and rotary embeddings.
//
// Products (Matrix.MatMul) run, by default, the way llama.cpp's CPU backend
// does: the float32 activations are encoded once per product into the
// weight type's activation type (Q8_0, Q8_1, Q8_K, fp16, bf16 or float32;
// see actquant.go) and each weight row is dotted with them by an
// integer/typed dot product (dot.go, dot_k.go), several rows at a time, the
// rows split over the worker pool in chunks. SetExactFloat(true) selects
// the float path instead: each weight row dequantized exactly (bit for bit
// as ggml does) and multiplied in float32, which is what llama.cpp computes
// for an F32 copy of the same weights.
//
// Every kernel has a generic Go version, the specification; faster tiers
// (Tier: AVX2 on amd64, NEON/dotprod/i8mm on arm64) register themselves at
// init when the CPU has them (registerDot, registerAct, registerDotRows)
// and must give the same bits (TestAllImplementations). -tags purego or
// noasm builds only the generic code; SLM_KERNEL_TIER caps the tier.
//
// Shapes in comments follow the maths: W (rows, cols) @ x (cols,) -> (rows,).
// Slices of the wrong length are programming errors and panic like any
// out-of-range index; validating user input is the caller's job.
package kernel
