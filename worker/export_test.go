package worker

// AwaitStartPass waits until the recoverer's pass at start is over (at once
// for a worker not started), so a test's own pass does not race it for the
// same refunds.
func (w *Worker) AwaitStartPass() {
	if w.recoverer.stop != nil {
		<-w.recoverer.started
	}
}
