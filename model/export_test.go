package model

// SetBatchSize lets tests shrink a State's batch to exercise chunking.
func SetBatchSize(s *State, n int) { s.batch = min(n, s.batch) }

// KeyCache is layer l's key cache of s.
func KeyCache(s *State, l int) []float32 { return s.k[l][:s.n*s.cfg.KVDim()] }
