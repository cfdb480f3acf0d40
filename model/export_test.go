package model

// SetBatchSize lets tests shrink a State's batch to exercise chunking.
func SetBatchSize(s *State, n int) { s.batch = min(n, s.batch) }
