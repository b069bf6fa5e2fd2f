package worker

import "time"

// SetReconcilePace makes reconciliation runs check batch refunds between
// two saves and hand their task back after slice, until restore: a test
// sees a run of many slices without thousands of refunds.
func SetReconcilePace(batch int, slice time.Duration) (restore func()) {
	b, s := reconcileBatch, reconcileSlice
	reconcileBatch, reconcileSlice = batch, slice
	return func() { reconcileBatch, reconcileSlice = b, s }
}

// SetReconcileReadWait makes a reconciliation wait d (growing by d per try)
// before it looks a refund up again after a look-up got no answer, until
// restore.
func SetReconcileReadWait(d time.Duration) (restore func()) {
	w := reconcileReadWait
	reconcileReadWait = d
	return func() { reconcileReadWait = w }
}
