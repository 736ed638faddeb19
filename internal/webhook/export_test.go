package webhook

// SetAfterSend installs a hook that runs after the receiver answered and
// before the attempt is recorded: returning an error there is a worker
// killed at the worst moment.
func SetAfterSend(s *Service, f func() error) { s.afterSend = f }

// BatchRuns returns how many load and record batches w's deliveries ran.
func BatchRuns(w *DeliverWorker) (loads, records int64) {
	if w.batches == nil {
		return 0, 0
	}
	return w.batches.load.runs.Load(), w.batches.record.runs.Load()
}
