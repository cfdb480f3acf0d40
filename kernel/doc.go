// Package kernel holds the numeric loops of the forward pass: matrix-vector
// and matrix-matrix products over weights in any ggml block format, dot
// products, norms, activations, softmax and rotary embeddings.
//
// This is the plain-Go implementation and therefore the specification that
// faster (SIMD) versions must reproduce. The API knows bytes, shapes and
// block types, never tensor names. Activations are float32; weights are
// dequantized exactly (bit for bit as ggml does) and multiplied in float32,
// which is what llama.cpp computes for an F32 copy of the same weights.
//
// Shapes in comments follow the maths: W (rows, cols) @ x (cols,) -> (rows,).
// Slices of the wrong length are programming errors and panic like any
// out-of-range index; validating user input is the caller's job.
package kernel
