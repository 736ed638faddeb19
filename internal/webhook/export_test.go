package webhook

// SetAfterSend installs a hook that runs after the receiver answered and
// before the attempt is recorded: returning an error there is a worker
// killed at the worst moment.
func SetAfterSend(s *Service, f func() error) { s.afterSend = f }
